import GatehouseCore
import GatehousePolicy

/// SPEC §2 `forward_auth`, §11: the decision endpoint for a front proxy (nginx `auth_request`,
/// Traefik `forwardAuth`, Caddy `forward_auth`, Envoy `ext_authz` over HTTP).
public struct ForwardAuthSettings: Sendable {
    /// Which headers describe the original request (SPEC §11). Exactly one convention counts:
    /// a header of another convention, which a client may have sent, never decides.
    public enum Style: String, Sendable, CaseIterable {
        /// `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto` (Traefik, Caddy).
        case forwarded
        /// `X-Original-Method`, `X-Original-URI`, `X-Forwarded-Host` (the nginx recipe).
        case original
        /// The endpoint path + the original path and query (Envoy's `path_prefix`); the
        /// decision request's own method and `Host` are the original ones.
        case envoy
    }

    public static let defaultPath = "/_gatehouse/auth"
    public static let defaultAllowFrom = [CIDR("127.0.0.0/8")!, CIDR("::1/128")!]

    /// The endpoint's path: exact for `forwarded` and `original`, a prefix for `envoy`.
    public var path: String
    public var style: Style
    /// Peers that may ask; others get 404. They count as trusted proxies (SPEC §11).
    public var allowFrom: [CIDR]

    public init(path: String = defaultPath, style: Style, allowFrom: [CIDR] = defaultAllowFrom) {
        self.path = path
        self.style = style
        self.allowFrom = allowFrom
    }

    /// Whether `address` (the connection's peer) may ask.
    public func allows(peer address: String) -> Bool {
        allowFrom.contains { $0.contains(address) }
    }
}

/// Reads the `forward_auth` block; nil when absent or invalid (reported).
enum ForwardAuthSection {
    static func read(_ node: ConfigNode?, sessionEndpoints: [(path: String, key: String)],
                     _ diagnostics: Diagnostics) -> ForwardAuthSettings? {
        guard let node, let fields = node.fields(ConfigKeys.forwardAuth, diagnostics) else { return nil }
        let errorsBefore = diagnostics.errorCount
        let style = fields.required("style", diagnostics)?.oneOf(ForwardAuthSettings.Style.self, diagnostics)
        var settings = ForwardAuthSettings(style: style ?? .forwarded)
        let pathNode = fields["path"]
        if let pathNode, let text = pathNode.string(diagnostics) {
            if let problem = pathProblem(text) { diagnostics.error(pathNode, problem) } else { settings.path = text }
        }
        if let clash = sessionEndpoints.first(where: { $0.path == settings.path }) {
            diagnostics.error(pathNode ?? node, "\(quoted(settings.path)) is also \(clash.key); each gateway endpoint needs "
                                  + "its own path")
        }
        if let listNode = fields["allow_from"], let items = listNode.list(diagnostics) {
            if items.isEmpty { diagnostics.error(listNode, "at least one address or network is needed") }
            settings.allowFrom = items.compactMap { item in
                guard let text = item.string(diagnostics) else { return nil }
                guard let cidr = CIDR(text) else {
                    diagnostics.error(item, "expected an address or network like 127.0.0.0/8 or ::1/128, got \(quoted(text))")
                    return nil
                }
                return cidr
            }
        }
        guard style != nil, diagnostics.errorCount == errorsBefore else { return nil }
        return settings
    }

    /// A normalized path (as the session endpoints' paths), not `/` and not ending in `/`: with
    /// `style: envoy` the original path (which starts with `/`) is appended to it.
    static func pathProblem(_ text: String) -> String? {
        if let problem = EndpointPath.problem(text) { return problem.message }
        if text.hasSuffix("/") {
            return "must not end with / (envoy appends the original path, which starts with one), got \(quoted(text))"
        }
        return nil
    }
}
