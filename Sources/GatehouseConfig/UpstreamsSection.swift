import GatehouseCore

/// The `upstreams` section (SPEC §2): a mapping from name to target pool settings.
struct UpstreamsSection {
    /// The valid upstreams by name.
    var settings: [String: UpstreamSettings] = [:]
    /// Every declared name in file order, valid or not (routes naming an invalid upstream get
    /// no second, misleading "unknown upstream" error), with where it is declared.
    var declared: [(name: String, location: SourceLocation)] = []

    var names: [String] { declared.map(\.name) }

    init(_ node: ConfigNode?, _ diagnostics: Diagnostics) {
        guard let node, let entries = node.entries(diagnostics) else { return }
        for entry in entries {
            let upstream = node.named(entry.key, entry.value)
            declared.append((entry.key, entry.keyLocation))
            guard Names.isValid(entry.key) else {
                diagnostics.error(entry.keyLocation, "\(upstream.path): \(Names.rule)")
                continue
            }
            if let settings = Self.upstream(named: entry.key, upstream, diagnostics) {
                self.settings[entry.key] = settings
            }
        }
    }

    /// Settings with defaults for what is unset; invalid values are reported (and the loader
    /// then returns no config at all).
    private static func upstream(named name: String, _ node: ConfigNode,
                                 _ diagnostics: Diagnostics) -> UpstreamSettings? {
        guard let fields = node.fields(ConfigKeys.upstream, diagnostics) else { return nil }
        var settings = UpstreamSettings(name: name, targets: [])
        if let targetsNode = fields.required("targets", diagnostics), let items = targetsNode.list(diagnostics) {
            if items.isEmpty { diagnostics.error(targetsNode, "at least one target is needed") }
            for item in items {
                guard let text = item.string(diagnostics) else { continue }
                switch AddressSyntax.upstreamTarget(text) {
                case .success(let target): settings.targets.append(target)
                case .failure(let error): diagnostics.error(item, error.message)
                }
            }
        }
        if let ms = fields["connect_timeout"]?.duration(diagnostics) { settings.connectTimeoutMs = ms }
        if let ms = fields["timeout"]?.duration(diagnostics) { settings.timeoutMs = ms }
        if let node = fields["max_idle_per_worker"], let count = node.int(diagnostics) {
            if count >= 0 {
                settings.maxIdlePerWorker = count
            } else {
                diagnostics.error(node, "must be 0 or more, got \(count)")
            }
        }
        if let flag = fields["preserve_host"]?.bool(diagnostics) { settings.preserveHost = flag }
        return settings
    }
}

/// The rule for operator-chosen names (upstreams, routes): they appear in access-log fields and
/// metric labels, so they stay plain.
enum Names {
    static let rule = "a name may contain only letters, digits, \".\", \"_\" and \"-\""

    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}
