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
        return lines.joined(separator: "\n")
    }
}

public enum Explainer {
    /// `headers` as given with `--header 'Name: value'` (names case-insensitive).
    public static func explain(config: GatewayConfig, method: String, target: String, headers: [(String, String)]) -> Explanation {
        func header(_ name: String) -> String? { headers.last { $0.0.lowercased() == name.lowercased() }?.1 }
        guard let normalized = PathNormalizer.normalize(target: target, policy: config.server.pathPolicy) else {
            return Explanation(route: nil, normalizedPath: nil, decision: .deny, status: 400, reason: .pathRejected)
        }
        let facts = RequestFacts(method: method.uppercased(), target: normalized, host: normalized.authority ?? header("Host"),
                                 authorization: header("Authorization"))
        switch Decide.plan(facts, config: config) {
        case let .forward(route, _, _):
            return Explanation(route: route.name, normalizedPath: normalized.path, decision: .allow, status: nil, reason: nil,
                               requirement: "auth \(route.auth.rawValue)", upstream: route.upstream)
        case let .refuse(_, reason, route, status, _):
            return Explanation(route: route?.name, normalizedPath: normalized.path, decision: .deny, status: status,
                               reason: reason, requirement: route.map { "auth \($0.auth.rawValue)" }, upstream: route?.upstream)
        }
    }
}
