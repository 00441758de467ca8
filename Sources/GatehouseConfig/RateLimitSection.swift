import GatehouseCore
import GatehousePolicy

/// SPEC §2 `rate_limits`: where the rate-limit buckets live.
public struct RateLimitSettings: Sendable, Equatable {
    /// `memory` (exact for this instance, across its workers) or `redis://…` (exact across
    /// every instance that shares it).
    public var store: SessionStoreSetting = .memory
    /// `max_keys`: the most keys the memory store holds; beyond, the least recently used are
    /// dropped (counted in `gatehouse_rate_limit_keys_dropped_total`).
    public var maxKeys: Int = RateLimitSettings.defaultMaxKeys

    public static let defaultMaxKeys = 262_144
    public static let maxMaxKeys = 64 * 1_048_576

    public init(store: SessionStoreSetting = .memory, maxKeys: Int = RateLimitSettings.defaultMaxKeys) {
        self.store = store
        self.maxKeys = maxKeys
    }
}

/// Reads `rate_limits` and the routes' `rate_limit` blocks (SPEC §2, §13).
enum RateLimitSection {
    static let keys = ["store", "max_keys"]
    static let routeKeys = ["rate", "burst", "key"]
    static let rateHint = "expected a rate like 20/s, 100/m or 1000/h"
    static let keyHint = "expected subject, client or header:NAME"
    /// The longest header name a `header:` key may name.
    static let maxHeaderName = 128

    /// `rate_limits` (absent: the defaults).
    static func settings(_ node: ConfigNode?, _ diagnostics: Diagnostics) -> RateLimitSettings {
        var settings = RateLimitSettings()
        guard let node, let fields = node.fields(keys, diagnostics) else { return settings }
        if let storeNode = fields["store"], let text = storeNode.string(diagnostics) {
            switch AddressSyntax.sessionStore(text) {
            case .success(let store): settings.store = store
            case .failure(let error): diagnostics.error(storeNode, error.message)
            }
        }
        if let maxNode = fields["max_keys"], let value = maxNode.int(diagnostics) {
            if value < 1 || value > RateLimitSettings.maxMaxKeys {
                diagnostics.error(maxNode, "expected 1 to \(RateLimitSettings.maxMaxKeys), got \(value)")
            } else {
                settings.maxKeys = value
            }
        }
        return settings
    }

    /// A route's `rate_limit`; nil (with errors reported) when invalid.
    static func routeLimit(_ node: ConfigNode, _ diagnostics: Diagnostics) -> RateLimit? {
        guard let fields = node.fields(routeKeys, diagnostics) else { return nil }
        let rateNode = fields.required("rate", diagnostics)
        let burstNode = fields.required("burst", diagnostics)
        let rate = rateNode.flatMap { readRate($0, diagnostics) }
        let burst = burstNode.flatMap { readBurst($0, diagnostics) }
        var key = RateLimit.Key.subject
        var keyValid = true
        if let keyNode = fields["key"] {
            if let text = keyNode.string(diagnostics) {
                switch self.key(text) {
                case .success(let value): key = value
                case .failure(let error): diagnostics.error(keyNode, error.message); keyValid = false
                }
            } else {
                keyValid = false
            }
        }
        guard let rate, let burst, keyValid else { return nil }
        return RateLimit(count: rate.count, unit: rate.unit, burst: burst, key: key)
    }

    private static func readRate(_ node: ConfigNode, _ diagnostics: Diagnostics) -> (count: Int, unit: RateLimit.Unit)? {
        guard node.node.scalar != nil, !node.isNull else {
            diagnostics.error(node, "\(rateHint), got \(node.described)")
            return nil
        }
        switch rate(node.node.scalar!.string) {
        case .success(let value): return value
        case .failure(let error): diagnostics.error(node, error.message); return nil
        }
    }

    /// `N/s`, `N/m` or `N/h` with `N` in 1...``RateLimit/maxCount``.
    static func rate(_ text: String) -> Result<(count: Int, unit: RateLimit.Unit), SyntaxError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let unit = RateLimit.Unit(rawValue: String(parts[1])) else {
            return .failure(SyntaxError("\(rateHint), got \(quoted(text))"))
        }
        let digits = parts[0]
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .failure(SyntaxError("\(rateHint) (a whole number of requests), got \(quoted(text))"))
        }
        // More digits than the largest count has: too large, whatever they say (no overflow).
        guard digits.utf8.count <= 7, let count = Int(digits), count <= RateLimit.maxCount else {
            return .failure(SyntaxError("the rate is at most \(RateLimit.maxCount) per unit, got \(quoted(text))"))
        }
        guard count >= 1 else {
            return .failure(SyntaxError("the rate must be at least 1 per unit (leave rate_limit out for no limit), got \(quoted(text))"))
        }
        return .success((count, unit))
    }

    private static func readBurst(_ node: ConfigNode, _ diagnostics: Diagnostics) -> Int? {
        guard node.node.scalar != nil, node.node.tagName == .int else {
            diagnostics.error(node, "expected a whole number from 1 to \(RateLimit.maxBurst), got \(node.described)")
            return nil
        }
        // Yams gives no Int for a number that does not fit one: too large.
        guard let value = node.node.int, value <= RateLimit.maxBurst else {
            diagnostics.error(node, "burst is at most \(RateLimit.maxBurst), got \(node.described)")
            return nil
        }
        guard value >= 1 else {
            diagnostics.error(node, "burst must be at least 1 (the requests admitted at once), got \(value)")
            return nil
        }
        return value
    }

    /// `subject`, `client` or `header:NAME` (NAME an RFC 9110 token, lowercased).
    static func key(_ text: String) -> Result<RateLimit.Key, SyntaxError> {
        switch text {
        case "subject": return .success(.subject)
        case "client": return .success(.client)
        default: break
        }
        guard text.lowercased().hasPrefix("header:") else {
            return .failure(SyntaxError("\(keyHint), got \(quoted(text))"))
        }
        let name = String(text.dropFirst("header:".count))
        guard HTTPToken.isToken(name) else {
            return .failure(SyntaxError("header:NAME needs a header name (letters, digits and !#$%&'*+-.^_`|~), got \(quoted(text))"))
        }
        guard name.utf8.count <= maxHeaderName else {
            return .failure(SyntaxError("the header name is at most \(maxHeaderName) bytes long, got \(name.utf8.count)"))
        }
        return .success(.header(name.lowercased()))
    }

    /// Warnings about limits that cannot work as written: a `header:` key where no proxy is
    /// trusted (the header is never believed), `subject` on a route where nobody authenticates.
    static func warn(_ routes: [Route], trustedProxies: [CIDR], _ diagnostics: Diagnostics) {
        for route in routes {
            guard let limit = route.rateLimit else { continue }
            if case .header(let name) = limit.key, trustedProxies.isEmpty {
                diagnostics.warning(route.location, "route \(quoted(route.name)): rate_limit key header:\(name) is never "
                                        + "believed without server.trusted_proxies: every request is keyed by its client address")
            }
            if limit.key == .subject, route.auth == .none {
                diagnostics.warning(route.location, "route \(quoted(route.name)): rate_limit key subject with auth: none: "
                                        + "every caller is anonymous, so keyed by client address (write key: client)")
            }
        }
    }
}

extension RateLimitSection {
    /// The distinct `header:` key names of `routes`, in route order.
    static func headerNames(_ routes: [Route]) -> [String] {
        var names: [String] = []
        for route in routes {
            if case .header(let name)? = route.rateLimit?.key, !names.contains(name) { names.append(name) }
        }
        return names
    }
}
