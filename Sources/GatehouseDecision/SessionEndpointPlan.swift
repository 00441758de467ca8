import GatehouseCore
import GatehouseConfig
import GatehouseSessions

/// What to do at one of the gateway's own endpoints (SPEC §3 step 4, §5.3): login, keepalive
/// and logout, under the global CORS policy and the CSRF check of SPEC §7.2. The store calls
/// they need are the carrier's; what follows each call is decided here too.
public enum EndpointPlan: Sendable {
    /// An allowed preflight (global policy).
    case preflight(PreflightAnswer)
    case refuse(Refusal)
    /// Check the posted credentials and create a session (the carrier reads the body).
    case login(LoginSettings, cors: [(String, String)])
    /// Look the session up, then ``Decide/keepalive(after:settings:now:cors:)``.
    case keepalive(idHash: String, cors: [(String, String)])
    /// Look the session up and revoke it, then ``Decide/afterStoreWrite(_:subject:cors:success:)``;
    /// with no (well-formed) session cookie, answer ``Decide/logoutHeaders(cors:settings:)`` at once.
    case logout(idHash: String?, cors: [(String, String)])
    /// `GET sessions.oidc.login_path`: start a login at the provider
    /// (``Decide/oidcAuthorization(_:authorizationEndpoint:returnTo:config:now:using:)``).
    case oidcLogin(OIDCLoginSettings, returnTo: String?)
    /// `GET sessions.oidc.callback_path`: ``Decide/oidcCallback(_:query:cookieHeader:now:)``, the
    /// code exchange, then ``Decide/oidcIdentity(status:body:attempt:oidc:verifier:now:)``.
    case oidcCallback(OIDCLoginSettings, query: String?)
}

/// The keepalive after the store's lookup.
public enum KeepaliveStep: Sendable {
    /// An active session of a user still in the users file: refresh its idle timer.
    case touch(subject: String)
    case refuse(Refusal)
}

extension Decide {
    /// The plan at a session endpoint, or nil when `facts.target.path` is none (or sessions
    /// are off).
    public static func sessionEndpoint(_ facts: RequestFacts, config: borrowing GatewayConfig) -> EndpointPlan? {
        // Optional chaining first: `if let` would copy the settings on every request.
        guard let endpoint = config.sessions?.endpoint(at: facts.target.path), let settings = config.sessions else { return nil }
        let cors = config.cors?.responseHeaders(origin: facts.origin) ?? []
        // Their preflights are answered by the global CORS policy.
        if facts.method == "OPTIONS", let origin = facts.origin, let requested = facts.accessControlRequestMethod {
            if let policy = config.cors, case .allow(let allowed) = policy.preflight(
                origin: origin, method: requested, requestHeaders: facts.accessControlRequestHeaders) {
                return .preflight(PreflightAnswer(route: nil, headers: allowed))
            }
            return .refuse(Refusal(.corsRejected, .corsRejected))
        }
        if endpoint == .oidcLogin || endpoint == .oidcCallback {
            // GET, not CSRF-checked: the login only redirects, and the callback is bound to the
            // browser's own attempt cookie (a forged callback has none).
            guard let oidc = settings.oidc, facts.method == "GET" else { return .refuse(Refusal(.notFound, .noRoute, cors: cors)) }
            return endpoint == .oidcLogin
                ? .oidcLogin(oidc, returnTo: queryValue(facts.target.query, "return_to"))
                : .oidcCallback(oidc, query: facts.target.query)
        }
        guard facts.method == "POST" else { return .refuse(Refusal(.notFound, .noRoute, cors: cors)) }
        let global = config.cors
        guard CSRFCheck.allowsUnsafe(secFetchSite: facts.secFetchSite, origin: facts.origin, host: facts.host,
                                     publicOrigin: config.server.publicOrigin,
                                     corsAllows: { global?.allows(origin: $0) ?? false }) else {
            // Refused before authentication (SPEC §9): `auth: none`, and no login attempt counted.
            return .refuse(Refusal(.csrfRejected, .csrfRejected, cors: cors))
        }
        let wellFormed = facts.sessionCookie.flatMap { SessionID.isWellFormed($0) ? SessionID.hash($0) : nil }
        switch endpoint {
        case .login:
            guard let login = settings.login else { return .refuse(Refusal(.notFound, .noRoute, cors: cors)) }
            return .login(login, cors: cors)
        case .logout:
            return .logout(idHash: wellFormed, cors: cors)
        case .oidcLogin, .oidcCallback:
            return nil   // answered above
        case .keepalive:
            guard let idHash = wellFormed else {
                let reason: Reason = facts.sessionCookie == nil ? .missingCredentials : .sessionUnknown
                return .refuse(Refusal(.unauthorized, reason, tried: .session, cors: cors))
            }
            return .keepalive(idHash: idHash, cors: cors)
        }
    }

    /// The keepalive once the store answered: refused as a cookie-authenticated request would
    /// be (a user no longer in the users file keeps no session, SPEC §3.2), else touched.
    public static func keepalive(after lookup: Result<SessionRecord?, SessionStoreError>, settings: SessionSettings,
                                 now: Int64, cors: [(String, String)]) -> KeepaliveStep {
        func refuse(_ error: GatewayError, _ reason: Reason, _ subject: String? = nil) -> KeepaliveStep {
            .refuse(Refusal(error, reason, tried: .session, subject: subject, cors: cors))
        }
        switch lookup {
        case .failure: return refuse(.serviceUnavailable, .sessionStoreDown)
        case .success(nil): return refuse(.unauthorized, .sessionUnknown)
        case .success(let record?):
            switch record.state(now: now, idleTimeout: settings.idleTimeout) {
            case .expired: return refuse(.unauthorized, .sessionExpired)
            case .revoked: return refuse(.unauthorized, .sessionRevoked)
            case .active:
                guard record.oidc || sessionRoles(of: record.subject, login: settings.login) != nil else {
                    return refuse(.unauthorized, .sessionRevoked, record.subject)
                }
                return .touch(subject: record.subject)
            }
        }
    }

    /// After a keepalive's touch or a logout's revoke: nil when it worked (answer 204 with
    /// `success`'s headers), else the 503.
    public static func afterStoreWrite(_ result: Result<Void, SessionStoreError>, subject: String?,
                                       cors: [(String, String)]) -> Refusal? {
        guard case .failure = result else { return nil }
        return Refusal(.serviceUnavailable, .sessionStoreDown, tried: .session, subject: subject, cors: cors)
    }

    /// How long a logged-out session stays revoked in the store: until it would have ended
    /// anyway (its absolute expiry, or a full `absolute_timeout` when it was not found).
    public static func revokedUntil(_ lookup: Result<SessionRecord?, SessionStoreError>, settings: SessionSettings,
                                    now: Int64) -> Int64 {
        let until = (try? lookup.get())??.absoluteExpiry ?? now + settings.absoluteTimeout
        return max(until, now + 1)
    }

    /// The logout's 204: its CORS headers and the clearing `Set-Cookie` (SPEC §5.3).
    public static func logoutHeaders(cors: [(String, String)], settings: SessionSettings) -> [(String, String)] {
        cors + [("Set-Cookie", settings.cookie.clearingSetCookie())]
    }
}
