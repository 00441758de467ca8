import GatehouseAuth
import GatehouseCore
import GatehousePolicy

/// Reads route lists (the config's `routes`, then each policy file's) into one list in file
/// order (SPEC §2, §4.2), checking names for uniqueness across all of them, upstreams and
/// issuers for existence, and each route's authentication settings against the `jwt` section.
final class RouteCollector {
    /// The valid routes in table order; each one's ``Route/index`` is its position here.
    private(set) var routes: [Route] = []
    /// Each route's `require`, by ``Route/index``.
    private(set) var requirements: [Requirement?] = []
    /// How many route entries were written, valid or not.
    private(set) var declaredCount = 0
    /// Upstream names that some route refers to.
    private(set) var usedUpstreams: Set<String> = []

    private let upstreams: [String]
    /// The `jwt.issuers` names; nil when there is no `jwt` section (no Bearer authentication).
    let issuers: [String]?
    /// Whether there is a `sessions` section (session cookies authenticate).
    let hasSessions: Bool
    let diagnostics: Diagnostics
    private var firstDefinition: [String: SourceLocation] = [:]

    init(upstreams: [String], issuers: [String]?, hasSessions: Bool = false, _ diagnostics: Diagnostics) {
        self.upstreams = upstreams
        self.issuers = issuers
        self.hasSessions = hasSessions
        self.diagnostics = diagnostics
    }

    /// Reads a `routes` list; each valid entry becomes a ``Route`` located at its list item.
    func read(_ list: ConfigNode) {
        guard let items = list.list(diagnostics) else { return }
        for item in items {
            declaredCount += 1
            if case (var route, let requirement)? = route(item) {
                route.index = routes.count
                routes.append(route)
                requirements.append(requirement)
            }
        }
    }

    private func route(_ item: ConfigNode) -> (Route, Requirement?)? {
        guard let fields = item.fields(ConfigKeys.route, diagnostics) else { return nil }
        let name = fields.required("name", diagnostics).flatMap(routeName)
        let match = fields.required("match", diagnostics).flatMap(routeMatch)
        let upstream = fields.required("upstream", diagnostics).flatMap(upstreamName)
        // Every field is checked even when an earlier one failed, so that all problems are
        // reported; any error means no config, so an invalid field just leaves its default here.
        var auth = AuthRequirement.required
        if let value = fields["auth"]?.oneOf(AuthRequirement.self, diagnostics) { auth = value }
        var strip = false
        if let value = fields["strip_authorization"]?.bool(diagnostics) { strip = value }
        var denyStatus = 403
        if let node = fields["deny_status"], let status = node.int(diagnostics) {
            if status == 401 || status == 403 {
                denyStatus = status
            } else {
                diagnostics.error(node, "expected 401 or 403, got \(status)")
            }
        }
        var websocket = false
        if let value = fields["websocket"]?.bool(diagnostics) { websocket = value }
        let access = self.access(fields, item, auth: auth)
        let rateLimitNode = fields["rate_limit"]
        let rateLimit = rateLimitNode.flatMap { RateLimitSection.routeLimit($0, diagnostics) }
        var mode = RouteMode.enforce
        if let value = fields["mode"]?.oneOf(RouteMode.self, diagnostics) { mode = value }
        guard let name, let match, let upstream, rateLimitNode == nil || rateLimit != nil else { return nil }
        var route = Route(name: name, match: match, upstream: upstream, auth: auth, stripAuthorization: strip,
                          denyStatus: denyStatus, location: item.location, issuers: access.issuers,
                          loginRedirect: access.loginRedirect, cors: access.cors, websocket: websocket)
        route.rateLimit = rateLimit
        route.mode = mode
        return (route, access.requirement)
    }

    private func routeName(_ node: ConfigNode) -> String? {
        guard let name = node.string(diagnostics) else { return nil }
        guard Names.isValid(name) else {
            diagnostics.error(node, "\(Names.rule), got \(quoted(name))")
            return nil
        }
        if let first = firstDefinition[name] {
            diagnostics.error(node, "duplicate route name \(quoted(name)); first defined at \(first)")
            return nil
        }
        firstDefinition[name] = node.location
        return name
    }

    private func upstreamName(_ node: ConfigNode) -> String? {
        guard let name = node.string(diagnostics) else { return nil }
        guard upstreams.contains(name) else {
            let defined = upstreams.isEmpty ? "none" : upstreams.sorted().joined(separator: ", ")
            diagnostics.error(node, "unknown upstream \(quoted(name)); defined: \(defined)")
            return nil
        }
        usedUpstreams.insert(name)
        return name
    }

    private func routeMatch(_ node: ConfigNode) -> RouteMatch? {
        guard let fields = node.fields(ConfigKeys.routeMatch, diagnostics) else { return nil }
        var glob: Glob?
        if let pathNode = fields.required("path", diagnostics), let pattern = pathNode.string(diagnostics) {
            do {
                glob = try Glob(pattern)
            } catch {
                diagnostics.error(pathNode, error.description)
            }
        }
        var methods: Set<String>?
        var valid = true
        if let methodsNode = fields["methods"], let items = methodsNode.list(diagnostics) {
            if items.isEmpty {
                diagnostics.error(methodsNode, "at least one method is needed; leave methods out to match every method")
                valid = false
            }
            methods = []
            for item in items {
                guard let text = item.string(diagnostics) else { valid = false; continue }
                let method = text.uppercased()
                guard HTTPToken.isToken(method) else {
                    diagnostics.error(item, "expected an HTTP method like GET or POST, got \(quoted(text))")
                    valid = false
                    continue
                }
                methods?.insert(method)
            }
        }
        var host: String?
        if let hostNode = fields["host"], let text = hostNode.string(diagnostics) {
            switch AddressSyntax.routeHost(text) {
            case .success(let value): host = value
            case .failure(let error): diagnostics.error(hostNode, error.message); valid = false
            }
        }
        guard let glob, valid else { return nil }
        return RouteMatch(path: glob, methods: methods, host: host)
    }
}

/// RFC 9110 §5.6.2 `token`, the syntax of a method name.
enum HTTPToken {
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar)
                || ("0"..."9").contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
        }
    }
}
