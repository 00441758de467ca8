import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseDecision

/// `gatehouse explain`: the decision the running gateway would take for a request, without a
/// server (SPEC §1, §10). Shares the decision pipeline (GatehouseDecision) with the request path.
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
    /// The `WWW-Authenticate` challenge of a refusal.
    public var challenge: String? = nil
    /// Whether the matched route tunnels WebSocket upgrades (`websocket: true`, SPEC §12).
    public var websocket: Bool? = nil
    /// The route's `rate_limit` and the key this request counts under (SPEC §13).
    public var rateLimit: RateLimit? = nil
    public var rateLimitKey: String? = nil
    /// Where each issuer's keys come from (files and secrets, a `jwks_url`, discovery).
    public var keySources: [String] = []

    /// One JSON object with `route`, `normalized_path`, `decision`, `status`, `reason`.
    public var json: String {
        var s = "{\"route\":"
        JSONText.appendOptional(route, to: &s)
        s += ",\"normalized_path\":"
        JSONText.appendOptional(normalizedPath, to: &s)
        s += ",\"decision\":\"\(decision.rawValue)\",\"status\":\(status.map(String.init) ?? "null")"
        s += ",\"reason\":\(reason.map { "\"\($0.rawValue)\"" } ?? "null")"
        if let rateLimit {
            s += ",\"rate_limit\":{\"rate\":\"\(rateLimit.rateText)\",\"burst\":\(rateLimit.burst),\"key\":"
            JSONText.appendOptional(rateLimit.key.text, to: &s)
            s += ",\"bucket\":"
            JSONText.appendOptional(rateLimitKey, to: &s)
            s += "}"
        }
        return s + "}"
    }

    /// The readable report.
    public var text: String {
        var lines: [String] = []
        lines.append("normalized path: \(normalizedPath ?? "(refused by the path policy)")")
        lines.append("route:           \(route ?? "(none)")")
        if let upstream { lines.append("upstream:        \(upstream)") }
        if let requirement { lines.append("requires:        \(requirement)") }
        if let websocket {
            lines.append("websocket:       " + (websocket ? "yes (upgrades are tunnelled)" : "no (Upgrade is not tunnelled)"))
        }
        lines.append("decision:        \(decision.rawValue)" + (status.map { " (\($0))" } ?? ""))
        if let reason { lines.append("reason:          \(reason.rawValue)") }
        if let subject { lines.append("subject:         \(subject)") }
        if let challenge { lines.append("challenge:       \(challenge)") }
        if let rateLimit { lines.append("rate limit:      \(rateLimit.description)") }
        if let rateLimitKey { lines.append("counted as:      \(rateLimitKey) (explain does not consult the store)") }
        if let note { lines.append("note:            \(note)") }
        for source in keySources { lines.append("keys:            \(source)") }
        return lines.joined(separator: "\n")
    }
}

public enum Explainer {
    /// `headers` as given with `--header 'Name: value'` (names case-insensitive). Keys from a
    /// `jwks_url` are not fetched: only keys from files and secrets are known here. The facts
    /// and the plan are the server's own (``RequestFacts``, ``Decide``); this prints the plan.
    public static func explain(config: GatewayConfig, method: String, target: String, headers: [(String, String)],
                               now: Int64 = Clock.wallMs() / 1000) -> Explanation {
        var explanation = decide(config: config, method: method, target: target, headers: headers, now: now)
        explanation.keySources = keySources(config.jwt)
        return explanation
    }

    /// One line per issuer: where its keys come from (SPEC §5.2, §14.1).
    static func keySources(_ jwt: JWTSettings?) -> [String] {
        guard let jwt else { return [] }
        return jwt.verifier.issuers.map { issuer in
            var parts: [String] = []
            if !issuer.keys.isEmpty { parts.append("\(issuer.keys.keys.count) key(s) from secret_file/secret_env/jwks_file") }
            for remote in jwt.remoteJWKS where remote.issuer == issuer.name {
                parts.append(remote.discoveryIssuer == nil
                    ? "jwks_url \(remote.url) (fetched at run time, not by explain)"
                    : "discovery \(remote.url), then its jwks_uri (fetched at run time, not by explain; "
                        + "the document's issuer must be \"\(remote.discoveryIssuer!)\")")
            }
            return "issuer \(issuer.name): " + (parts.isEmpty ? "no keys" : parts.joined(separator: "; "))
        }
    }

    private static func decide(config: GatewayConfig, method: String, target: String, headers: [(String, String)],
                               now: Int64) -> Explanation {
        let auth = AuthContext(verifier: config.jwt?.verifier, cache: nil, now: now)
        switch Pipeline.decide(method: method.uppercased(), rawTarget: target, host: .fromRequest,
                               headers: HeaderPairs(headers), config: config, auth: auth) {
        case .refused(let refusal):
            return Explanation(route: nil, normalizedPath: nil, decision: .deny, status: refusal.status, reason: refusal.reason)
        case let .endpoint(plan, facts):
            let endpoint = config.sessions?.endpoint(at: facts.target.path) ?? .login
            return explain(plan, endpoint: endpoint, path: facts.target.path)
        case let .plan(plan, facts):
            return explain(plan, path: facts.target.path, config: config)
        }
    }

    /// The explanation of a route's plan.
    static func explain(_ plan: Plan, path: String, config: GatewayConfig) -> Explanation {
        func on(_ route: Route?, _ decision: Decision, _ status: Int?, _ reason: Reason?) -> Explanation {
            Explanation(route: route?.name, normalizedPath: path, decision: decision, status: status, reason: reason,
                        requirement: route.map { requirement($0, config: config) }, upstream: route?.upstream,
                        websocket: route?.websocket, rateLimit: route?.rateLimit)
        }
        switch plan {
        case .forward(let forward):
            var e = on(forward.route, .allow, nil, nil)
            e.subject = forward.identity?.subject
            if let shadow = forward.shadow {
                e.note = "mode: shadow: forwarded, logged as \(shadow.decision.rawValue) \(shadow.reason.rawValue) "
                    + "(\(shadow.status) when enforced)"
            }
            if forward.tunnel { e.note = (e.note.map { $0 + "; " } ?? "") + "a WebSocket handshake: tunnelled on the upstream's 101" }
            return e
        case .refuse(let refusal):
            var e = on(refusal.route, .deny, refusal.status, refusal.reason)
            e.challenge = refusal.challenge
            return e
        case .redirect(let redirect):
            var e = on(redirect.route, .deny, 302, .loginRedirect)
            e.note = "credentials: \(redirect.credentials.rawValue); redirect to \(redirect.location)"
            return e
        case let .needsKeys(route, _):
            // Not reached: explain never waits for keys (`mayWaitForKeys` is off).
            return on(route, .deny, 401, .unknownKid)
        case .needsIntrospection(let wait):
            var e = on(wait.route, .deny, 401, .tokenInactive)
            e.note = "an opaque token: explain does not call the introspection endpoint, so the token is not known here"
            return e
        case .needsSession(let wait):
            var e = on(wait.route, .deny, 401, .sessionUnknown)
            e.note = "a session cookie is presented; explain does not read the session store, so the session is unknown here"
            return e
        case .preflight(let answer):
            return on(answer.route, .preflight, 204, nil)
        case .needsRateLimit(let check):
            var e = explain(.forward(check.forward), path: path, config: config)
            e.rateLimitKey = check.key.description
            return e
        }
    }

    /// The gateway's own login, keepalive and logout endpoints (SPEC §3 step 4): POST only,
    /// their preflights answered by the global CORS policy, CSRF-checked.
    static func explain(_ plan: EndpointPlan, endpoint: SessionEndpoint, path: String) -> Explanation {
        var e = Explanation(route: nil, normalizedPath: path, decision: .allow, status: nil, reason: nil)
        switch plan {
        case .preflight:
            e.decision = .preflight
            e.status = 204
        case .refuse(let refusal):
            e.decision = .deny
            e.status = refusal.status
            e.reason = refusal.reason
            e.challenge = refusal.challenge
        case .login, .keepalive, .logout:
            break
        case .oidcLogin, .oidcCallback:
            e.note = "the gateway's own \(endpoint.rawValue) endpoint (GET; answered by the gateway, never forwarded)"
            return e
        }
        let answered = e.decision == .allow ? " (CSRF-checked; answered by the gateway, never forwarded)" : ""
        e.note = "the gateway's own \(endpoint.rawValue) endpoint" + answered
        return e
    }

    static func requirement(_ route: Route, config: GatewayConfig) -> String {
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
}
