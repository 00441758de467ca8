import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehouseSessions
import GatehousePolicy

/// Per-loop authentication state: the current verifier and this loop's verified-token cache.
public struct AuthContext {
    public var verifier: JWTVerifier?
    public var cache: VerifiedTokenCache?
    public var now: Int64
    /// An unknown `kid` of an issuer with a `jwks_url` may wait for a refresh (``Plan/needsKeys(_:issuer:)``).
    /// Off for `explain` and for the decision after that wait: a request waits at most once.
    public var mayWaitForKeys: Bool
    /// Issuer names whose keys come from a URL (`jwt.issuers[].jwks_url`).
    public var refreshableIssuers: Set<String>
    /// This loop's introspection answers (SPEC §14.3); nil: every opaque token is asked for.
    public var introspectionCache: IntrospectionCache?

    public init(verifier: JWTVerifier?, cache: VerifiedTokenCache?, now: Int64, mayWaitForKeys: Bool = false,
                refreshableIssuers: Set<String> = [], introspectionCache: IntrospectionCache? = nil) {
        self.verifier = verifier
        self.cache = cache
        self.now = now
        self.mayWaitForKeys = mayWaitForKeys
        self.refreshableIssuers = refreshableIssuers
        self.introspectionCache = introspectionCache
    }
}

/// The decision pipeline of SPEC §3, steps 5–8 (step 4, the gateway's own endpoints, is
/// ``Decide/sessionEndpoint(_:config:)``). Pure: no I/O, no clock but `auth.now`.
public enum Decide {
    /// The plan for a request whose path has passed the path policy, under `config` (the
    /// request's own snapshot's).
    public static func plan(_ facts: RequestFacts, config: borrowing GatewayConfig, auth: AuthContext) -> Plan {
        shadowing(decide(facts, config: config, auth: auth), facts, config)
    }

    /// The plan as an enforcing route has it (``shadowing(_:_:_:)`` turns it into a forward on
    /// a shadow route).
    private static func decide(_ facts: RequestFacts, config: borrowing GatewayConfig, auth: AuthContext) -> Plan {
        // A preflight is matched to the route of the method it asks about (SPEC §6).
        if facts.method == "OPTIONS", let origin = facts.origin, let requested = facts.accessControlRequestMethod {
            return preflight(facts, origin: origin, requested: requested, config: config)
        }
        guard let route = config.routes.match(method: facts.method, path: facts.target.path, host: facts.host) else {
            return .refuse(refusal(.notFound, .noRoute, route: nil, facts, config))
        }
        // An upgrade that also sends a body: what follows the head would be read as body by
        // one side and as tunnel bytes by the other (SPEC §12).
        if route.websocket && facts.webSocketHandshake && facts.handshakeHasBody {
            return .refuse(refusal(.badRequest, .malformedRequest, route: route, facts, config))
        }
        if route.auth == .none { return forward(route, nil, facts, config) }
        let requirement = config.requirement(for: route)
        guard var authorization = facts.authorization, let token = bearerTokenBytes(&authorization) else {
            if let cookie = facts.sessionCookie, config.sessions != nil {
                return cookiePlan(cookie, route: route, requirement: requirement, facts, config)
            }
            if route.auth == .optional && requirement == nil { return forward(route, nil, facts, config) }
            return unauthenticated(route, facts, config, reason: .missingCredentials, tried: .none)
        }
        return bearerPlan(in: &authorization, bytes: token, route: route, requirement: requirement, facts, config, auth)
    }

    private static func preflight(_ facts: RequestFacts, origin: String, requested: String,
                                  config: borrowing GatewayConfig) -> Plan {
        guard let route = config.routes.match(method: requested, path: facts.target.path, host: facts.host) else {
            return .refuse(refusal(.notFound, .noRoute, route: nil, facts, config))
        }
        if let policy = config.corsPolicy(for: route),
           case .allow(let headers) = policy.preflight(origin: origin, method: requested,
                                                      requestHeaders: facts.accessControlRequestHeaders) {
            return .preflight(PreflightAnswer(route: route, headers: headers))
        }
        // Refused without CORS headers (SPEC §6).
        return .refuse(Refusal(.corsRejected, .corsRejected, route: route))
    }

    /// A request with the gateway's session cookie and no Bearer token (SPEC §5.3, §7.2, §12).
    private static func cookiePlan(_ cookie: String, route: Route, requirement: Requirement?, _ facts: RequestFacts,
                                   _ config: borrowing GatewayConfig) -> Plan {
        let policy = config.corsPolicy(for: route)
        // An upgrade handshake needs an Origin of our own or one the route's CORS allows, on
        // every route and method: cross-site WebSocket hijacking (SPEC §12).
        if facts.secWebSocketKey {
            let allowed = facts.origin.map { $0 == config.server.publicOrigin || (policy?.allows(origin: $0) ?? false) } ?? false
            if !allowed { return .refuse(refusal(.csrfRejected, .csrfRejected, route: route, facts, config)) }
        }
        // CSRF comes before authentication for cookie-authenticated unsafe methods (SPEC §7.2).
        if !CSRFCheck.allows(method: facts.method, secFetchSite: facts.secFetchSite, origin: facts.origin,
                             host: facts.host, publicOrigin: config.server.publicOrigin,
                             corsAllows: { policy?.allows(origin: $0) ?? false }) {
            // Refused before authentication: logged with `auth: none` (SPEC §9).
            return .refuse(refusal(.csrfRejected, .csrfRejected, route: route, facts, config))
        }
        guard SessionID.isWellFormed(cookie) else {
            return unauthenticated(route, facts, config, reason: .sessionUnknown, tried: .session)
        }
        return .needsSession(SessionWait(route: route, requirement: requirement, idHash: SessionID.hash(cookie)))
    }

    /// A request whose `Authorization` value `header` holds a Bearer token at byte offsets `bytes`.
    private static func bearerPlan(in header: inout String, bytes: Range<Int>, route: Route, requirement: Requirement?,
                                   _ facts: RequestFacts, _ config: borrowing GatewayConfig, _ auth: AuthContext) -> Plan {
        // A token presented again: its remembered answer, found on the header's bytes (no
        // substring; ~400 instructions a request, deploy/bench/callgrind-jwt.sh).
        if let verifier = auth.verifier, let cache = auth.cache,
           let (result, _) = cache.rememberedNamingIssuer(in: &header, bytes: bytes, with: verifier, now: auth.now,
                                                         allowedIssuers: route.issuers) {
            return bearerPlan(result, route: route, requirement: requirement, facts, config)
        }
        let token = token(of: header, bytes: bytes)
        // `issuer`: the issuer the token was checked against (nil when refused before the issuer gate).
        let (result, issuer): (Result<VerifiedToken, Reason>, String?)
        if let verifier = auth.verifier {
            if let cache = auth.cache {
                (result, issuer) = cache.verifyNamingIssuer(token, with: verifier, now: auth.now, allowedIssuers: route.issuers)
            } else {
                (result, issuer) = verifier.verifyNamingIssuer(token, now: auth.now, allowedIssuers: route.issuers)
            }
        } else {
            (result, issuer) = (.failure(token.utf8.count > JWTVerifier.maxTokenBytes ? .tokenTooLarge : .unknownIssuer), nil)
        }
        // An opaque token (not a compact JWS) fails the JWT check at its shape, before any
        // work; only then is introspection considered, so JWTs pay nothing for it (SPEC §14.3).
        if case .failure(.malformedToken) = result, let introspection = config.jwt?.introspection, !isCompactJWS(token) {
            return introspectionPlan(token, introspection, route: route, requirement: requirement, facts, config, auth)
        }
        if case .failure(.unknownKid) = result, auth.mayWaitForKeys, let issuer, auth.refreshableIssuers.contains(issuer) {
            return .needsKeys(route, issuer: issuer)
        }
        return bearerPlan(result, route: route, requirement: requirement, facts, config)
    }

    /// The rest of ``bearerPlan(in:bytes:route:requirement:_:_:_:)`` once the token's check is
    /// known: 401 for a failure, 403 for an unmet requirement, else forward.
    private static func bearerPlan(_ result: Result<VerifiedToken, Reason>, route: Route,
                                   requirement: Requirement?, _ facts: RequestFacts,
                                   _ config: borrowing GatewayConfig) -> Plan {
        switch result {
        case .failure(let reason):
            return unauthenticated(route, facts, config, reason: reason, tried: .jwt)
        case .success(let verified):
            if let requirement, let failed = requirement.evaluate(verified) {
                var refused = refusal(.forbidden, failed, status: route.denyStatus, route: route, tried: .jwt,
                                      subject: verified.subject, facts, config)
                refused.identity = Identity(method: .jwt, token: verified)
                return .refuse(refused)
            }
            let identity = Identity(method: .jwt, token: verified)
            return forward(route, identity, facts, config)
        }
    }

    /// The rest of the decision once the session store answered (SPEC §5.3): nil record is an
    /// unknown session; expired and revoked ones are refused with their own reasons. Everything
    /// comes from the request's own snapshot: `wait` from the config it was matched in, and
    /// `config` that same config — the user's roles are read from its `sessions.login.roles`
    /// on every request, and a user no longer in its users file is refused as
    /// `session_revoked` (SPEC §3.2 "Sessions follow the users file").
    public static func plan(afterSession lookup: Result<SessionRecord?, SessionStoreError>, wait: SessionWait,
                            facts: RequestFacts, config: borrowing GatewayConfig, now: Int64) -> Plan {
        shadowing(decide(afterSession: lookup, wait: wait, facts: facts, config: config, now: now), facts, config)
    }

    private static func decide(afterSession lookup: Result<SessionRecord?, SessionStoreError>, wait: SessionWait,
                               facts: RequestFacts, config: borrowing GatewayConfig, now: Int64) -> Plan {
        let route = wait.route
        guard let sessions = config.sessions else {
            return unauthenticated(route, facts, config, reason: .sessionUnknown, tried: .session)
        }
        let record: SessionRecord
        switch lookup {
        case .failure:
            return .refuse(refusal(.serviceUnavailable, .sessionStoreDown, route: route, tried: .session, facts, config))
        case .success(nil):
            return unauthenticated(route, facts, config, reason: .sessionUnknown, tried: .session)
        case .success(let found?):
            record = found
        }
        switch record.state(now: now, idleTimeout: sessions.idleTimeout) {
        case .expired: return unauthenticated(route, facts, config, reason: .sessionExpired, tried: .session)
        case .revoked: return unauthenticated(route, facts, config, reason: .sessionRevoked, tried: .session)
        case .active: break
        }
        // OIDC sessions keep their ID token's roles (SPEC §3.2); password sessions follow the users file.
        guard let roles = record.oidc ? record.roles : sessionRoles(of: record.subject, login: sessions.login) else {
            return unauthenticated(route, facts, config, reason: .sessionRevoked, tried: .session)
        }
        let identity = Identity(method: .session, subject: record.subject, roles: roles, token: nil)
        if let requirement = wait.requirement, let failed = requirement.evaluate(sessionRoles: roles) {
            var refused = refusal(.forbidden, failed, status: route.denyStatus, route: route, tried: .session,
                                  subject: record.subject, facts, config)
            refused.identity = identity
            return .refuse(refused)
        }
        return forward(route, identity, facts, config)
    }

    /// The roles a password session's user has under `login` (SPEC §3.2): those of
    /// `sessions.login.roles` now, not those copied at login. Nil when the user is no longer in
    /// the users file — or when this config has no `login` block, so that no users file can
    /// vouch for them: the session is then refused, never forwarded.
    public static func sessionRoles(of subject: String, login: LoginSettings?) -> [String]? {
        guard let login, login.verifier.users[subject] != nil else { return nil }
        return login.roles(of: subject)
    }
}
