import GatehouseCore
import GatehouseConfig
import GatehouseSessions

/// The decisions about an open WebSocket tunnel (SPEC §12), pure like the rest of the
/// pipeline: whether a reload would now refuse its handshake, and what a look at its session
/// in the store means for it.
public enum TunnelChecks {
    /// What a session lookup means for a cookie-authenticated tunnel.
    public enum SessionVerdict: Equatable, Sendable {
        /// The session goes on; look again by `recheckAt` (Unix seconds) at the latest, when
        /// it would expire unless seen again.
        case keep(recheckAt: Int64)
        /// The session ended (logout, revocation, idle or absolute expiry, its user gone).
        case end(Reason)
        /// The store did not answer: keep the tunnel and ask again later (new requests get
        /// 503 meanwhile; an open tunnel is not cut for a store outage).
        case unknown
    }

    /// Re-runs the pipeline on the tunnel's handshake `facts` under `config` (a reload). Nil when
    /// the handshake would still be tunnelled, else the reason of the refusal. A cookie tunnel is
    /// judged with its session taken as live (`subject`): its route, requirement and user are
    /// re-checked here, its liveness by ``session(_:subject:config:now:)``. A Bearer token is
    /// verified again with the new keys and issuers: a `kid` no longer in its issuer's key set
    /// closes the tunnel (the key was withdrawn), an issuer with no keys at all (its first
    /// fetch under way) keeps it.
    public static func recheck(_ facts: RequestFacts, sessionSubject: String?, config: borrowing GatewayConfig,
                               auth: AuthContext) -> Reason? {
        var auth = auth
        auth.mayWaitForKeys = false
        let plan = Decide.plan(facts, config: config, auth: auth)
        if case .needsSession(let wait) = plan {
            guard let subject = sessionSubject else { return .sessionUnknown }
            let record = SessionRecord(idHash: wait.idHash, subject: subject, roles: [], createdAt: auth.now,
                                       lastSeen: auth.now, absoluteExpiry: .max)
            return verdict(Decide.plan(afterSession: .success(record), wait: wait, facts: facts, config: config,
                                       now: auth.now))
        }
        return verdict(plan)
    }

    private static func verdict(_ plan: Plan) -> Reason? {
        switch plan {
        case .forward(let forward): return forward.tunnel ? nil : .tunnelClosed
        // An open tunnel is not counted against its route's rate limit again.
        case .needsRateLimit(let check): return check.forward.tunnel ? nil : .tunnelClosed
        case .refuse(let refusal): return refusal.reason == .noKeys ? nil : refusal.reason
        case .redirect(let redirect): return redirect.credentials
        case .needsKeys: return nil
        // An opaque token is judged by its provider: its tunnel ends at the `exp` it was given.
        case .needsIntrospection: return nil
        case .needsSession: return .sessionUnknown
        case .preflight: return .tunnelClosed
        }
    }

    /// The store's answer about a cookie tunnel's session under `config`: the session must be
    /// active, and its user still the one of the handshake and still in the users file.
    public static func session(_ lookup: Result<SessionRecord?, SessionStoreError>, subject: String,
                               config: borrowing GatewayConfig, now: Int64) -> SessionVerdict {
        guard let sessions = config.sessions else { return .end(.sessionExpired) }
        let record: SessionRecord
        switch lookup {
        case .failure: return .unknown
        case .success(nil): return .end(.sessionExpired)
        case .success(let found?): record = found
        }
        guard record.state(now: now, idleTimeout: sessions.idleTimeout) == .active, record.subject == subject,
              Decide.sessionRoles(of: subject, login: sessions.login) != nil else { return .end(.sessionExpired) }
        return .keep(recheckAt: record.expiry(idleTimeout: sessions.idleTimeout))
    }

    /// How often client bytes may refresh a session's idle timer (seconds), as requests do:
    /// at most every few seconds per session, never less than once per quarter idle timeout.
    public static func touchInterval(idleTimeout: Int64) -> Int64 { min(5, max(1, idleTimeout / 4)) }
}
