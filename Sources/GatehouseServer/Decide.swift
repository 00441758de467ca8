import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehouseSessions
import GatehousePolicy

/// Who the caller is, once authenticated.
struct Identity {
    var method: AuthMethod
    var subject: String?
    var roles: [String]
    var token: VerifiedToken?
}

/// What the gateway will do with a request, decided from its facts alone (no I/O), so that
/// the server and `gatehouse explain` share one decision.
enum Plan {
    /// Forward to the route's upstream, with the caller's identity when there is one.
    case forward(Route, Identity?)
    /// Refuse with the uniform error; `route` is nil when no route was matched. `tried` is the
    /// credential kind that was presented and failed (for the log and the challenge).
    case refuse(GatewayError, Reason, route: Route?, status: Int, tried: AuthMethod, subject: String? = nil)
    /// A browser without valid credentials on a route with `login_redirect`: 302 there.
    case redirect(Route, location: String, tried: AuthMethod, reason: Reason)
    /// A CORS preflight, answered at the gateway: allowed with these headers, or refused.
    case preflight(Route, headers: [(String, String)]?)
    /// No Bearer token but the gateway's session cookie: look the session up in the store,
    /// then finish with ``Decide/plan(afterSession:wait:facts:sessions:now:)``.
    case needsSession(SessionWait)
    /// A Bearer token whose `kid` names no key of its issuer, whose keys come from a URL: wait
    /// (without blocking the loop, at most ``KeyWait/maxWaitMs``) for the refresh this triggers
    /// or one in flight, then decide again with ``AuthContext/mayWaitForKeys`` off (SPEC §3.2
    /// Keys). `issuer` is the issuer's name in `jwt.issuers`.
    case needsKeys(Route, issuer: String)
}

/// What a session-cookie request waits with while the store looks the session up: the route
/// and its `require`, both taken from the config the request was matched in. The continuation
/// needs no config lookup by route index, so a reload that lands during the wait cannot pair
/// this route with another config's requirement (SPEC §3).
struct SessionWait {
    var route: Route
    var requirement: Requirement?
    /// The SHA-256 of the cookie: the store's key.
    var idHash: String
}

/// The facts of a request that the decision needs.
struct RequestFacts {
    var method: String
    var target: NormalizedTarget
    /// The effective host: the absolute-form authority, else the `Host` header.
    var host: String?
    var authorization: String?
    var accept: String?
    var origin: String?
    var accessControlRequestMethod: String?
    var accessControlRequestHeaders: String?
    /// The gateway's own session cookie value, when sessions are on and the request has one.
    var sessionCookie: String? = nil
    var secFetchSite: String? = nil
}

/// Per-loop authentication state: the current verifier and this loop's verified-token cache.
struct AuthContext {
    var verifier: JWTVerifier?
    var cache: VerifiedTokenCache?
    var now: Int64
    /// An unknown `kid` of an issuer with a `jwks_url` may wait for a refresh (``Plan/needsKeys(_:issuer:)``).
    /// Off for `explain` and for the decision after that wait: a request waits at most once.
    var mayWaitForKeys = false
    /// Issuer names whose keys come from a URL (`jwt.issuers[].jwks_url`).
    var refreshableIssuers: Set<String> = []
}

enum Decide {
    /// Steps 5–8 of SPEC §3 for a request whose path has passed the path policy.
    static func plan(_ facts: RequestFacts, config: borrowing GatewayConfig, auth: AuthContext) -> Plan {
        // A preflight is matched to the route of the method it asks about (SPEC §6).
        if facts.method == "OPTIONS", let origin = facts.origin, let requested = facts.accessControlRequestMethod {
            guard let route = config.routes.match(method: requested, path: facts.target.path, host: facts.host) else {
                return .refuse(.notFound, .noRoute, route: nil, status: 404, tried: .none)
            }
            guard let policy = config.corsPolicy(for: route) else { return .preflight(route, headers: nil) }
            switch policy.preflight(origin: origin, method: requested, requestHeaders: facts.accessControlRequestHeaders) {
            case .allow(let headers): return .preflight(route, headers: headers)
            case .reject: return .preflight(route, headers: nil)
            }
        }
        guard let route = config.routes.match(method: facts.method, path: facts.target.path, host: facts.host) else {
            return .refuse(.notFound, .noRoute, route: nil, status: 404, tried: .none)
        }
        if route.auth == .none { return .forward(route, nil) }

        let requirement = config.requirement(for: route)
        guard let token = bearerToken(facts.authorization) else {
            if let cookie = facts.sessionCookie, let sessions = config.sessions {
                // CSRF comes before authentication for cookie-authenticated unsafe methods (SPEC §7.2).
                let policy = config.corsPolicy(for: route)
                if !CSRFCheck.allows(method: facts.method, secFetchSite: facts.secFetchSite, origin: facts.origin,
                                     host: facts.host, publicOrigin: config.server.publicOrigin,
                                     corsAllows: { policy?.allows(origin: $0) ?? false }) {
                    // Refused before authentication: logged with `auth: none` (SPEC §9).
                    return .refuse(.csrfRejected, .csrfRejected, route: route, status: 403, tried: .none)
                }
                _ = sessions
                guard SessionID.isWellFormed(cookie) else {
                    return unauthenticated(route, facts, reason: .sessionUnknown, tried: .session)
                }
                return .needsSession(SessionWait(route: route, requirement: requirement, idHash: SessionID.hash(cookie)))
            }
            if route.auth == .optional && requirement == nil { return .forward(route, nil) }
            return unauthenticated(route, facts, reason: .missingCredentials, tried: .none)
        }
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
        if case .failure(.unknownKid) = result, auth.mayWaitForKeys, let issuer, auth.refreshableIssuers.contains(issuer) {
            return .needsKeys(route, issuer: issuer)
        }
        switch result {
        case .failure(let reason):
            return unauthenticated(route, facts, reason: reason, tried: .jwt)
        case .success(let verified):
            if let requirement, let failed = requirement.evaluate(verified) {
                return .refuse(.forbidden, failed, route: route, status: route.denyStatus, tried: .jwt, subject: verified.subject)
            }
            return .forward(route, Identity(method: .jwt, subject: verified.subject, roles: verified.roles, token: verified))
        }
    }

    /// The rest of the decision once the session store answered (SPEC §5.3): nil record is an
    /// unknown session; expired and revoked ones are refused with their own reasons. Everything
    /// comes from the request's own snapshot: `wait` from the config it was matched in, and
    /// `sessions` of that same config — the user's roles are read from its
    /// `sessions.login.roles` on every request, and a user no longer in its users file is
    /// refused as `session_revoked` (SPEC §3.2 "Sessions follow the users file").
    static func plan(afterSession lookup: Result<SessionRecord?, SessionStoreError>, wait: SessionWait, facts: RequestFacts,
                     sessions: SessionSettings?, now: Int64) -> Plan {
        let route = wait.route
        guard let sessions else {
            return unauthenticated(route, facts, reason: .sessionUnknown, tried: .session)
        }
        let record: SessionRecord
        switch lookup {
        case .failure:
            return .refuse(.serviceUnavailable, .sessionStoreDown, route: route, status: 503, tried: .session)
        case .success(nil):
            return unauthenticated(route, facts, reason: .sessionUnknown, tried: .session)
        case .success(let found?):
            record = found
        }
        switch record.state(now: now, idleTimeout: sessions.idleTimeout) {
        case .expired: return unauthenticated(route, facts, reason: .sessionExpired, tried: .session)
        case .revoked: return unauthenticated(route, facts, reason: .sessionRevoked, tried: .session)
        case .active: break
        }
        guard let roles = sessionRoles(of: record.subject, login: sessions.login) else {
            return unauthenticated(route, facts, reason: .sessionRevoked, tried: .session)
        }
        if let requirement = wait.requirement, let failed = requirement.evaluate(sessionRoles: roles) {
            return .refuse(.forbidden, failed, route: route, status: route.denyStatus, tried: .session, subject: record.subject)
        }
        return .forward(route, Identity(method: .session, subject: record.subject, roles: roles, token: nil))
    }

    /// The roles a password session's user has under `login` (SPEC §3.2): those of
    /// `sessions.login.roles` now, not those copied at login. Nil when the user is no longer in
    /// the users file — or when this config has no `login` block, so that no users file can
    /// vouch for them: the session is then refused, never forwarded.
    static func sessionRoles(of subject: String, login: LoginSettings?) -> [String]? {
        guard let login, login.verifier.users[subject] != nil else { return nil }
        return login.roles(of: subject)
    }

    /// 401, or 302 to `login_redirect` for a browser's GET/HEAD (SPEC §3.1).
    private static func unauthenticated(_ route: Route, _ facts: RequestFacts, reason: Reason, tried: AuthMethod) -> Plan {
        if let location = route.loginRedirect, facts.method == "GET" || facts.method == "HEAD",
           AcceptHeader.prefersHTML(facts.accept) {
            return .redirect(route, location: loginLocation(location, target: facts.target), tried: tried, reason: reason)
        }
        return .refuse(.unauthorized, reason, route: route, status: 401, tried: tried)
    }

    /// `location` plus `return_to=` the normalized path and query, URL-encoded.
    static func loginLocation(_ location: String, target: NormalizedTarget) -> String {
        var back = target.path
        if let query = target.query { back += "?" + query }
        let separator = location.contains("?") ? "&" : "?"
        return location + separator + "return_to=" + URLEncoding.component(back)
    }

    /// The token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 6750 §2.1),
    /// or nil when the header is absent or of another scheme (not a credential of ours). Spaces
    /// and tabs around the token are dropped. Byte by byte, and a substring of the header: no
    /// copy, no Unicode case mapping, on every authenticated request.
    static func bearerToken(_ authorization: String?) -> Substring? {
        guard let authorization else { return nil }
        let utf8 = authorization.utf8
        var start = utf8.startIndex
        for letter in "bearer".utf8 {
            // `| 0x20` maps only `B` and `b` to `b` (and so on): the scheme is ASCII letters.
            guard start != utf8.endIndex, utf8[start] | 0x20 == letter else { return nil }
            start = utf8.index(after: start)
        }
        guard start == utf8.endIndex || utf8[start] == UInt8(ascii: " ") else { return nil }
        func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        while start != utf8.endIndex, isBlank(utf8[start]) { start = utf8.index(after: start) }
        var end = utf8.endIndex
        while end != start, isBlank(utf8[utf8.index(before: end)]) { end = utf8.index(before: end) }
        return authorization[start..<end]
    }
}

/// `Accept` negotiation for the login redirect: true when `text/html` is listed with q > 0 and
/// no `application/json` has an equal or higher q (RFC 9110 §12.5.1).
enum AcceptHeader {
    static func prefersHTML(_ accept: String?) -> Bool {
        guard let accept else { return false }
        var html: Double? = nil
        var json: Double? = nil
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let type = parts.first?.trimmingSpaces().lowercased() else { continue }
            var q = 1.0
            for param in parts.dropFirst() {
                let kv = param.trimmingSpaces().split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].lowercased() == "q" { q = Double(kv[1].trimmingSpaces()) ?? 0 }
            }
            if type == "text/html" { html = max(html ?? 0, q) }
            if type == "application/json" { json = max(json ?? 0, q) }
        }
        guard let html, html > 0 else { return false }
        if let json, json >= html { return false }
        return true
    }
}

/// Percent-encoding of a query component (RFC 3986 §2.1: everything but unreserved).
enum URLEncoding {
    static func component(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

extension Requirement {
    /// A session has roles but no token claims or scopes: a requirement on scopes or claims
    /// is never met by a session.
    func evaluate(sessionRoles roles: [String]) -> Reason? {
        if !rolesAny.isEmpty, !rolesAny.contains(where: roles.contains) { return .insufficientRole }
        if !rolesAll.allSatisfy(roles.contains) { return .insufficientRole }
        if !scopesAll.isEmpty { return .insufficientScope }
        if !claims.isEmpty { return .claimMismatch }
        return nil
    }
}
