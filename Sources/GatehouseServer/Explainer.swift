import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// `gatehouse explain`: the decision the running gateway would take for a request, without a
/// server (SPEC §1, §10). Shares `Decide` with the request path.
public struct Explanation: Sendable {
    public var route: String?
    public var normalizedPath: String?
    public var decision: Decision
    public var status: Int?
    public var reason: Reason?
    public var requirement: String?
    public var upstream: String?
    public var subject: String? = nil
    public var note: String? = nil

    /// One JSON object with `route`, `normalized_path`, `decision`, `status`, `reason`.
    public var json: String {
        var s = "{\"route\":"
        JSONText.appendOptional(route, to: &s)
        s += ",\"normalized_path\":"
        JSONText.appendOptional(normalizedPath, to: &s)
        s += ",\"decision\":\"\(decision.rawValue)\",\"status\":\(status.map(String.init) ?? "null")"
        s += ",\"reason\":\(reason.map { "\"\($0.rawValue)\"" } ?? "null")}"
        return s
    }

    /// The readable report.
    public var text: String {
        var lines: [String] = []
        lines.append("normalized path: \(normalizedPath ?? "(refused by the path policy)")")
        lines.append("route:           \(route ?? "(none)")")
        if let upstream { lines.append("upstream:        \(upstream)") }
        if let requirement { lines.append("requires:        \(requirement)") }
        lines.append("decision:        \(decision.rawValue)" + (status.map { " (\($0))" } ?? ""))
        if let reason { lines.append("reason:          \(reason.rawValue)") }
        if let subject { lines.append("subject:         \(subject)") }
        if let note { lines.append("note:            \(note)") }
        return lines.joined(separator: "\n")
    }
}

public enum Explainer {
    /// `headers` as given with `--header 'Name: value'` (names case-insensitive). Keys from a
    /// `jwks_url` are not fetched: only keys from files and secrets are known here.
    public static func explain(config: GatewayConfig, method: String, target: String, headers: [(String, String)],
                               now: Int64 = Clock.wallMs() / 1000) -> Explanation {
        func header(_ name: String) -> String? { headers.last { $0.0.lowercased() == name.lowercased() }?.1 }
        guard let normalized = PathNormalizer.normalize(target: target, policy: config.server.pathPolicy) else {
            return Explanation(route: nil, normalizedPath: nil, decision: .deny, status: 400, reason: .pathRejected)
        }
        if let endpoint = config.sessions?.endpoint(at: normalized.path) {
            return explainEndpoint(endpoint, config: config, method: method.uppercased(), path: normalized.path, header: header)
        }
        let facts = RequestFacts(method: method.uppercased(), target: normalized, host: normalized.authority ?? header("Host"),
                                 authorization: header("Authorization"), accept: header("Accept"), origin: header("Origin"),
                                 accessControlRequestMethod: header("Access-Control-Request-Method"),
                                 accessControlRequestHeaders: header("Access-Control-Request-Headers"))
        var facts2 = facts
        if let sessions = config.sessions, let cookie = header("Cookie") {
            facts2.sessionCookie = sessions.cookie.value(inCookieHeader: cookie)
            facts2.secFetchSite = header("Sec-Fetch-Site")
        }
        let auth = AuthContext(verifier: config.jwt?.verifier, cache: nil, now: now)
        func requirement(_ route: Route) -> String {
            var parts = ["auth \(route.auth.rawValue)"]
            if let r = config.requirement(for: route) {
                if !r.rolesAny.isEmpty { parts.append("roles_any \(r.rolesAny)") }
                if !r.rolesAll.isEmpty { parts.append("roles_all \(r.rolesAll)") }
                if !r.scopesAll.isEmpty { parts.append("scopes_all \(r.scopesAll)") }
                for c in r.claims { parts.append("claim \(c.path) = \(c.value)") }
            }
            if let issuers = route.issuers { parts.append("issuers \(issuers.sorted())") }
            return parts.joined(separator: ", ")
        }
        switch Decide.plan(facts2, config: config, auth: auth) {
        case let .forward(route, identity):
            var e = Explanation(route: route.name, normalizedPath: normalized.path, decision: .allow, status: nil, reason: nil,
                                requirement: requirement(route), upstream: route.upstream)
            e.subject = identity?.subject
            return e
        case let .refuse(_, reason, route, status, _, _):
            return Explanation(route: route?.name, normalizedPath: normalized.path, decision: .deny, status: status,
                               reason: reason, requirement: route.map(requirement), upstream: route?.upstream)
        case let .redirect(route, location, _, reason):
            var e = Explanation(route: route.name, normalizedPath: normalized.path, decision: .deny, status: 302,
                                reason: .loginRedirect, requirement: requirement(route), upstream: route.upstream)
            e.note = "credentials: \(reason.rawValue); redirect to \(location)"
            return e
        case let .needsKeys(route, _):
            // Not reached: explain never waits for keys (`mayWaitForKeys` is off).
            return Explanation(route: route.name, normalizedPath: normalized.path, decision: .deny, status: 401,
                               reason: .unknownKid, requirement: requirement(route), upstream: route.upstream)
        case let .needsSession(wait):
            let route = wait.route
            var e = Explanation(route: route.name, normalizedPath: normalized.path, decision: .deny, status: 401,
                                reason: .sessionUnknown, requirement: requirement(route), upstream: route.upstream)
            e.note = "a session cookie is presented; explain does not read the session store, so the session is unknown here"
            return e
        case let .preflight(route, headers):
            if headers != nil {
                return Explanation(route: route.name, normalizedPath: normalized.path, decision: .preflight, status: 204,
                                   reason: nil, requirement: requirement(route), upstream: route.upstream)
            }
            return Explanation(route: route.name, normalizedPath: normalized.path, decision: .deny, status: 403,
                               reason: .corsRejected, requirement: requirement(route), upstream: route.upstream)
        }
    }

    /// The gateway's own login, keepalive and logout endpoints (SPEC §3 step 4): POST only,
    /// their preflights answered by the global CORS policy.
    private static func explainEndpoint(_ endpoint: SessionEndpoint, config: GatewayConfig, method: String, path: String,
                                        header: (String) -> String?) -> Explanation {
        var e = Explanation(route: nil, normalizedPath: path, decision: .allow, status: nil, reason: nil)
        if method == "OPTIONS", let origin = header("Origin"), let requested = header("Access-Control-Request-Method") {
            if let policy = config.cors,
               case .allow = policy.preflight(origin: origin, method: requested, requestHeaders: header("Access-Control-Request-Headers")) {
                e.decision = .preflight
                e.status = 204
            } else {
                e.decision = .deny
                e.status = 403
                e.reason = .corsRejected
            }
        } else if method != "POST" {
            e.decision = .deny
            e.status = 404
            e.reason = .noRoute
        }
        e.note = "the gateway's own \(endpoint.rawValue) endpoint" + (method == "POST" ? " (CSRF-checked; answered by the gateway, never forwarded)" : "")
        return e
    }
}
