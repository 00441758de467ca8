// API CONTRACT STUBS — to be replaced by real implementations in their own files.
import GatehouseCore

/// How strictly request paths are checked (SPEC §4.1).
public enum PathPolicy: String, Sendable, CaseIterable {
    case strict, lenient
}

/// A request target after the path policy: the normalized path that routes match and the
/// upstream receives, the query passed through unchanged (without `?`, nil when absent), and the
/// authority of an absolute-form target (`GET http://host/x`), which replaces `Host`.
public struct NormalizedTarget: Sendable, Equatable {
    public var path: String
    public var query: String?
    public var authority: String?
    public init(path: String, query: String?, authority: String?) {
        self.path = path; self.query = query; self.authority = authority
    }
}

/// Whether a route applies to authenticated callers only, to anyone, or to anyone with
/// credentials checked when presented (SPEC §2 `routes[].auth`).
public enum AuthRequirement: String, Sendable, CaseIterable {
    case none, optional, required
}

/// Why a glob pattern was refused.
public struct GlobError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A path glob (SPEC §4.2): `*` matches within one segment, `**` any number of segments
/// (`/a/**` matches `/a`, `/a/` and everything below).
public struct Glob: Sendable, CustomStringConvertible {
    public let pattern: String
    public init(_ pattern: String) throws(GlobError) { self.pattern = pattern; fatalError("stub") }
    public func matches(_ path: String) -> Bool { fatalError("stub") }
    public var description: String { pattern }
}

/// What a route matches on: path glob, methods (uppercased; nil = all), host (lowercased, port
/// stripped; nil = any).
public struct RouteMatch: Sendable {
    public var path: Glob
    public var methods: Set<String>?
    public var host: String?
    public init(path: Glob, methods: Set<String>?, host: String?) {
        self.path = path; self.methods = methods; self.host = host
    }
    /// `host` is the request's Host header value (any case, may carry a port).
    public func matches(method: String, path: String, host: String?) -> Bool { fatalError("stub") }
    /// True when every request this match accepts is also accepted by `self` — conservative
    /// (may say false when unsure), used for `check`'s shadowed-route warnings.
    public func covers(_ other: RouteMatch) -> Bool { fatalError("stub") }
}

/// One route of the route table (SPEC §2 `routes`).
public struct Route: Sendable {
    public var name: String
    public var match: RouteMatch
    public var upstream: String
    public var auth: AuthRequirement
    public var stripAuthorization: Bool
    public var denyStatus: Int
    public var location: SourceLocation
    public init(name: String, match: RouteMatch, upstream: String, auth: AuthRequirement = .required,
                stripAuthorization: Bool = false, denyStatus: Int = 403, location: SourceLocation) {
        self.name = name; self.match = match; self.upstream = upstream; self.auth = auth
        self.stripAuthorization = stripAuthorization; self.denyStatus = denyStatus; self.location = location
    }
}

/// Routes in file order; the first match wins (SPEC §4.2).
public struct RouteTable: Sendable {
    public let routes: [Route]
    public init(_ routes: [Route]) { self.routes = routes }
    public func match(method: String, path: String, host: String?) -> Route? { fatalError("stub") }
    /// Pairs (shadowed, shadowing earlier route) for `check` warnings.
    public func shadowed() -> [(shadowed: Route, by: Route)] { fatalError("stub") }
}

/// Path normalization and the path policy (SPEC §4.1).
public enum PathNormalizer {
    /// `target` is the request target exactly as received: origin-form (`/a/b?x=1`) or
    /// absolute-form (`http://host:8080/x?y`). Returns nil when the target must be refused
    /// with 400 (`path_rejected`).
    public static func normalize(target: String, policy: PathPolicy) -> NormalizedTarget? { fatalError("stub") }
}

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is /32 or /128).
public struct CIDR: Sendable, CustomStringConvertible {
    public init?(_ text: String) { fatalError("stub") }
    public func contains(_ address: String) -> Bool { fatalError("stub") }
    public var description: String { fatalError("stub") }
}

/// The client address and the forwarded `X-Forwarded-For` value (SPEC §7.1).
public enum ForwardedFor {
    /// The client is the peer, or — when the peer is trusted — the right-most entry of the
    /// incoming `X-Forwarded-For` that is not itself trusted (the left-most when all are trusted).
    public static func clientAddress(peer: String, incoming: String?, trusted: [CIDR]) -> String { fatalError("stub") }
    /// The outgoing header: the incoming chain plus the peer when the peer is trusted, else the peer alone.
    public static func outgoing(peer: String, incoming: String?, trusted: [CIDR]) -> String { fatalError("stub") }
}
