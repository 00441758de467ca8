import GatehouseCore
import GatehousePolicy

/// `cors` blocks (SPEC §2, §6): the global one and a route's own. The block is read here and
/// judged by ``CORSPolicy``, whose every problem is reported at the entry it names.
enum CORSSection {
    static let defaultMethods = ["GET", "HEAD", "POST"]
    static let defaultMaxAgeSeconds: Int64 = 600
    /// Browsers cap the preflight cache lower (Firefox at 24h, Chromium at 2h).
    static let maxQuietMaxAgeSeconds: Int64 = 86_400

    /// A route's `cors`: `false` turns CORS off there, a block replaces the global policy;
    /// nil when invalid (reported).
    static func route(_ node: ConfigNode, _ diagnostics: Diagnostics) -> RouteCORS? {
        if node.node.scalar != nil, node.node.tagName == .bool, let flag = node.node.bool {
            if !flag { return .disabled }
            diagnostics.error(node, "true is not a policy: use a block or false "
                                  + "(a block lists allow_origins and the rest; false turns CORS off here)")
            return nil
        }
        guard node.node.mapping != nil else {
            diagnostics.error(node, "expected a cors block or false, got \(node.described)")
            return nil
        }
        return policy(node, diagnostics).map(RouteCORS.custom)
    }

    /// A `cors` block; nil when invalid (reported).
    static func policy(_ node: ConfigNode, _ diagnostics: Diagnostics) -> CORSPolicy? {
        guard let fields = node.fields(ConfigKeys.cors, diagnostics) else { return nil }
        let errorsBefore = diagnostics.errorCount
        // Keys whose value was already reported: the policy is still judged on the others, and
        // its complaints about these (an unparsed list reads as empty) are left out.
        var failed: Set<String> = []
        func read<Value>(_ key: String, _ parse: () -> Value?) -> Value? {
            let before = diagnostics.errorCount
            let value = parse()
            if diagnostics.errorCount != before { failed.insert(key) }
            return value
        }
        var lists: [String: [(value: String, node: ConfigNode)]] = [:]
        lists["allow_origins"] = read("allow_origins") {
            fields.required("allow_origins", diagnostics)?.stringList(of: "origin", diagnostics)
        }
        lists["allow_methods"] = read("allow_methods") { fields["allow_methods"]?.stringList(of: "method", diagnostics) }
        for key in ["allow_headers", "expose_headers"] {
            lists[key] = read(key) {
                fields[key]?.list(diagnostics)?.compactMap { item in item.string(diagnostics).map { ($0, item) } }
            }
        }
        let credentials = fields["allow_credentials"]?.bool(diagnostics) ?? false
        var maxAge = defaultMaxAgeSeconds
        if let maxAgeNode = fields["max_age"],
           let seconds = read("max_age", { maxAgeNode.seconds(allowZero: true, diagnostics) }) {
            maxAge = seconds
            if seconds > maxQuietMaxAgeSeconds {
                diagnostics.warning(maxAgeNode, "\(maxAgeNode.described) is longer than browsers keep a preflight "
                                        + "(Firefox at most 24h, Chromium 2h)")
            }
        }

        func values(_ key: String, default: [String] = []) -> [String] { lists[key]?.map(\.value) ?? `default` }
        let origins = values("allow_origins"), methods = values("allow_methods", default: defaultMethods)
        let headers = values("allow_headers"), expose = values("expose_headers")
        let problems = CORSPolicy.problems(allowOrigins: origins, allowMethods: methods, allowHeaders: headers,
                                           exposeHeaders: expose, allowCredentials: credentials,
                                           maxAgeSeconds: Int(maxAge))
        for problem in problems where !failed.contains(problem.key) {
            // The policy names the key and, for a list entry, its index: point at that line.
            let entry = problem.index.flatMap { index in
                lists[problem.key].flatMap { $0.indices.contains(index) ? $0[index].node : nil }
            }
            let at = entry ?? fields[problem.key] ?? node
            let message = problem.message.hasPrefix(problem.key)
                ? "\(node.path).\(problem.message)" : "\(node.path).\(problem.key): \(problem.message)"
            diagnostics.error(at.location, message)
        }
        guard problems.isEmpty, diagnostics.errorCount == errorsBefore else { return nil }
        do throws(CORSConfigError) {
            return try CORSPolicy(allowOrigins: origins, allowMethods: methods, allowHeaders: headers,
                                  exposeHeaders: expose, allowCredentials: credentials, maxAgeSeconds: Int(maxAge))
        } catch {
            diagnostics.error(node, error.description)
            return nil
        }
    }
}
