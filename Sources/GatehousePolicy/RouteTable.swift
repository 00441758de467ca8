import GatehouseCore
#if canImport(Glibc)
import Glibc
#endif

/// Whether a route applies to authenticated callers only, to anyone, or to anyone with
/// credentials checked when presented (SPEC §2 `routes[].auth`).
public enum AuthRequirement: String, Sendable, CaseIterable {
    case none, optional, required
}

/// What a route matches on (SPEC §4.2): path glob, methods (uppercased; nil = all), host
/// (lowercased, port stripped; nil = any).
public struct RouteMatch: Sendable {
    public var path: Glob
    public var methods: Set<String>?
    public var host: String?
    public init(path: Glob, methods: Set<String>?, host: String?) {
        self.path = path; self.methods = methods; self.host = host
    }

    /// Whether a request matches. `method` is compared case-sensitively (methods are
    /// case-sensitive tokens, [RFC 9110 §9.1](https://www.rfc-editor.org/rfc/rfc9110#section-9.1)).
    /// `host` is the request's Host header value (any case, may carry a port, `[v6]:port`
    /// included; [RFC 9110 §7.2](https://www.rfc-editor.org/rfc/rfc9110#section-7.2)); it is
    /// compared case-insensitively without its port and without one trailing dot. A route with
    /// a host never matches a request without one. `path` is the normalized path.
    public func matches(method: String, path: String, host: String?) -> Bool {
        if let methods, !methods.contains(method) { return false }
        if let expected = self.host {
            guard let host, HostName.equal(HostName.bare(expected[...]), HostName.bare(host[...])) else { return false }
        }
        return self.path.matches(path)
    }

    /// True when every request `other` accepts is also accepted by `self` — conservative
    /// (may say false when unsure), used for `check`'s shadowed-route warnings.
    ///
    /// Methods: `self` takes all, or a superset of `other`'s (which must not be "all").
    /// Host: `self` takes any, or the same host. Path: the same pattern; `self` is `/**`;
    /// `self` is `P/**` with a literal `P` and `other` is `P` or starts with `P/`; or `other`
    /// has no wildcards and `self` matches it.
    public func covers(_ other: RouteMatch) -> Bool {
        if let methods {
            guard let otherMethods = other.methods, otherMethods.isSubset(of: methods) else { return false }
        }
        if let host {
            guard let otherHost = other.host,
                  HostName.equal(HostName.bare(host[...]), HostName.bare(otherHost[...])) else { return false }
        }
        return path.covers(other.path)
    }
}

extension Glob {
    /// Whether every path `other` matches is certainly matched by `self` (see `RouteMatch.covers`).
    func covers(_ other: Glob) -> Bool {
        if pattern == other.pattern { return true }
        switch shape {
        case .subtree(let prefix):
            let otherBytes = other.pattern.utf8
            // `other`'s text starts with the literal `P/` (or is `P`), so every path it matches
            // does too: literal bytes match only themselves, and a `**` right after `P/`
            // matching nothing leaves `P` itself.
            guard otherBytes.count >= prefix.count, otherBytes.prefix(prefix.count).elementsEqual(prefix) else {
                return false
            }
            let rest = otherBytes.dropFirst(prefix.count)
            return rest.isEmpty || rest.first == ASCII.slash
        case .exact, .general:
            if case .exact = other.shape { return matches(other.pattern) }
            return false
        }
    }
}

/// Host comparison without allocation.
enum HostName {
    /// The host of a Host value: without brackets (`[::1]:8080` → `::1`), without a port
    /// (`a.example:8080` → `a.example`; an unbracketed value with several colons is an IPv6
    /// address and keeps them) and without one trailing dot (`a.example.` → `a.example`).
    static func bare(_ value: Substring) -> Substring {
        var host = value
        let utf8 = host.utf8
        if utf8.first == ASCII.openBracket {
            if let close = utf8.firstIndex(of: ASCII.closeBracket) {
                host = host[utf8.index(after: utf8.startIndex)..<close]
            }
        } else if let colon = utf8.firstIndex(of: ASCII.colon),
                  !utf8[utf8.index(after: colon)...].contains(ASCII.colon) {
            host = host[..<colon]
        }
        if host.utf8.count > 1, host.utf8.last == ASCII.dot {
            host = host[..<host.utf8.index(before: host.utf8.endIndex)]
        }
        return host
    }

    /// ASCII case-insensitive equality.
    static func equal(_ lhs: Substring, _ rhs: Substring) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8) { ASCII.lowercased($0) == ASCII.lowercased($1) }
    }
}

/// Which CORS policy applies on a route (SPEC §2 `routes[].cors`, §6).
public enum RouteCORS: Sendable {
    /// No `cors` key: the global policy, if there is one.
    case inherit
    /// `cors: false`: no CORS on this route, whatever the global policy says.
    case disabled
    /// A `cors` block: this policy replaces the global one entirely.
    case custom(CORSPolicy)
}

/// SPEC §2 `routes[].mode`, §15.2: whether a route's refusals are carried out.
public enum RouteMode: String, Sendable, CaseIterable {
    /// Refusals are answered (the default).
    case enforce
    /// Every request is decided and logged as usual (`shadow: true`), then forwarded anyway;
    /// path policy, CSRF and the WebSocket Origin rule still refuse.
    case shadow
}

/// One route of the route table (SPEC §2 `routes`).
///
/// A value, with its fields behind one reference (copied on write): a route is copied into
/// every plan, refusal, log note and exchange, and copying a struct of fourteen fields took a
/// dozen reference-count pairs each time (~1,500 instructions per proxied request,
/// deploy/bench/callgrind-jwt.sh); a copy is now one.
public struct Route: Sendable {
    /// The fields themselves (their memberwise init and copy are the compiler's).
    private struct Values {
        var name: String
        var match: RouteMatch
        var upstream: String
        var auth: AuthRequirement
        var stripAuthorization: Bool
        var denyStatus: Int
        var location: SourceLocation
        var index: Int
        var issuers: Set<String>?
        var loginRedirect: String?
        var cors: RouteCORS
        var websocket: Bool
        var rateLimit: RateLimit?
        var mode: RouteMode
    }

    /// Mutated only while uniquely referenced (``unique()`` copies it first), so a shared one
    /// is only ever read: safe to share between threads.
    private final class Fields: @unchecked Sendable {
        var values: Values
        init(_ values: Values) { self.values = values }
    }

    private var fields: Fields

    /// ``fields``, copied first when another route shares them.
    private mutating func unique() -> Fields {
        if !isKnownUniquelyReferenced(&fields) { fields = Fields(fields.values) }
        return fields
    }

    public var name: String {
        get { fields.values.name }
        set { unique().values.name = newValue }
    }
    public var match: RouteMatch {
        get { fields.values.match }
        set { unique().values.match = newValue }
    }
    public var upstream: String {
        get { fields.values.upstream }
        set { unique().values.upstream = newValue }
    }
    public var auth: AuthRequirement {
        get { fields.values.auth }
        set { unique().values.auth = newValue }
    }
    public var stripAuthorization: Bool {
        get { fields.values.stripAuthorization }
        set { unique().values.stripAuthorization = newValue }
    }
    public var denyStatus: Int {
        get { fields.values.denyStatus }
        set { unique().values.denyStatus = newValue }
    }
    public var location: SourceLocation {
        get { fields.values.location }
        set { unique().values.location = newValue }
    }
    /// The route's position in the final route table (set by the config loader); other
    /// per-route tables, like the config's requirements, are indexed by it.
    public var index: Int {
        get { fields.values.index }
        set { unique().values.index = newValue }
    }
    /// The `jwt.issuers` names whose tokens count here; nil means any issuer.
    public var issuers: Set<String>? {
        get { fields.values.issuers }
        set { unique().values.issuers = newValue }
    }
    /// Where a browser without valid credentials is sent (SPEC §3.1): a path starting with `/`
    /// or an absolute `https://` URL; nil means it gets the 401 like any client.
    public var loginRedirect: String? {
        get { fields.values.loginRedirect }
        set { unique().values.loginRedirect = newValue }
    }
    /// The CORS policy of this route.
    public var cors: RouteCORS {
        get { fields.values.cors }
        set { unique().values.cors = newValue }
    }
    /// `websocket: true`: WebSocket upgrade handshakes are tunnelled on this route (SPEC §12).
    public var websocket: Bool {
        get { fields.values.websocket }
        set { unique().values.websocket = newValue }
    }
    /// `rate_limit` (SPEC §13); nil when the route has none.
    public var rateLimit: RateLimit? {
        get { fields.values.rateLimit }
        set { unique().values.rateLimit = newValue }
    }
    /// `mode` (SPEC §15.2).
    public var mode: RouteMode {
        get { fields.values.mode }
        set { unique().values.mode = newValue }
    }

    public init(name: String, match: RouteMatch, upstream: String, auth: AuthRequirement = .required,
                stripAuthorization: Bool = false, denyStatus: Int = 403, location: SourceLocation,
                index: Int = 0, issuers: Set<String>? = nil, loginRedirect: String? = nil, cors: RouteCORS = .inherit,
                websocket: Bool = false) {
        fields = Fields(Values(name: name, match: match, upstream: upstream, auth: auth,
                               stripAuthorization: stripAuthorization, denyStatus: denyStatus, location: location,
                               index: index, issuers: issuers, loginRedirect: loginRedirect, cors: cors,
                               websocket: websocket, rateLimit: nil, mode: .enforce))
    }
}

/// Routes in file order; the first match wins (SPEC §4.2). Nothing unmatched is forwarded.
public struct RouteTable: Sendable {
    public let routes: [Route]
    /// Some route has `websocket: true` (SPEC §12): only then is a request's `Upgrade` read.
    public let tunnels: Bool
    /// Per route, in the same order, what ``match(method:path:host:)`` can decide from the
    /// path's bytes alone (see ``QuickPath``).
    private let quick: [QuickPath]
    /// The literal bytes of every `QuickPath`, one after another.
    private let literals: [UInt8]

    public init(_ routes: [Route]) {
        self.routes = routes
        tunnels = routes.contains { $0.websocket }
        var quick: [QuickPath] = []
        var literals: [UInt8] = []
        for route in routes {
            let match = route.match
            let pathOnly = match.methods == nil && match.host == nil
            let start = literals.count
            switch match.path.shape {
            case .subtree(let prefix):
                literals.append(contentsOf: prefix)
                quick.append(QuickPath(kind: .subtree, start: start, count: prefix.count, pathOnly: pathOnly))
            case .exact where match.path.pattern.utf8.allSatisfy({ $0 < 0x80 }):
                // An ASCII pattern equals a path exactly when their bytes do (`String ==`
                // compares canonical equivalence, which only non-ASCII text can tell apart).
                literals.append(contentsOf: match.path.pattern.utf8)
                quick.append(QuickPath(kind: .exact, start: start, count: literals.count - start, pathOnly: pathOnly))
            default:
                quick.append(QuickPath(kind: .other, start: start, count: 0, pathOnly: false))
            }
        }
        self.quick = quick
        self.literals = literals
    }

    /// A route's path test on bytes: `/P/**` and `/**` (subtree) and wildcard-free ASCII
    /// patterns (exact) are answered here, the same as ``Glob/matches(_:)`` answers them; a
    /// route with methods or a host, or another pattern, is asked in full. Looking at a
    /// `Route` copies its match (a retain and release per field, ~250 instructions a route
    /// looked at); this table is read in place.
    private struct QuickPath {
        enum Kind: UInt8 { case subtree, exact, other }
        let kind: Kind
        let start: Int
        let count: Int
        /// No methods and no host: the path test decides alone.
        let pathOnly: Bool

        /// nil: ask the route itself.
        @inline(__always)
        func matches(_ path: UnsafeBufferPointer<UInt8>, _ literals: UnsafePointer<UInt8>) -> Bool? {
            switch kind {
            case .subtree:
                guard path.count >= count, path.first == ASCII.slash,
                      count == 0 || memcmp(path.baseAddress!, literals + start, count) == 0 else { return false }
                return path.count == count || path[count] == ASCII.slash
            case .exact:
                return path.count == count && (count == 0 || memcmp(path.baseAddress!, literals + start, count) == 0)
            case .other:
                return nil
            }
        }
    }

    /// The first route, in order, that matches the request (see `RouteMatch.matches`); nil
    /// means 404 `not_found`.
    public func match(method: String, path: String, host: String?) -> Route? {
        let found = path.utf8.withContiguousStorageIfAvailable { firstMatch($0, method: method, path: path, host: host) }
            ?? Array(path.utf8).withUnsafeBufferPointer { firstMatch($0, method: method, path: path, host: host) }
        return found.map { routes[$0] }
    }

    /// The index of the first route that matches; `bytes` are `path`'s.
    private func firstMatch(_ bytes: UnsafeBufferPointer<UInt8>, method: String, path: String, host: String?) -> Int? {
        quick.withUnsafeBufferPointer { quick in
            literals.withUnsafeBufferPointer { literals in
                let base = literals.baseAddress ?? UnsafePointer(bitPattern: 1)!
                for index in quick.indices {
                    let test = quick[index]
                    switch test.matches(bytes, base) {
                    case false?:
                        continue
                    case true? where test.pathOnly:
                        return index
                    default:
                        // By index: `first(where:)` copies every route it looks at.
                        if routes[index].match.matches(method: method, path: path, host: host) { return index }
                    }
                }
                return nil
            }
        }
    }

    /// Pairs (shadowed, shadowing earlier route) for `check` warnings: every route that an
    /// earlier route covers (`RouteMatch.covers`), paired with the first such earlier route.
    public func shadowed() -> [(shadowed: Route, by: Route)] {
        var pairs: [(shadowed: Route, by: Route)] = []
        for (index, route) in routes.enumerated() {
            if let earlier = routes[..<index].first(where: { $0.match.covers(route.match) }) {
                pairs.append((route, earlier))
            }
        }
        return pairs
    }
}
