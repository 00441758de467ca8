import GatehouseAuth
import GatehouseCore
import GatehousePolicy

/// The validated configuration: every value present, checked and typed. Immutable; the server
/// swaps whole snapshots on reload.
public struct GatewayConfig: Sendable {
    /// The config file's path as given on the command line.
    public var path: String
    public var server: ServerSettings
    public var admin: AdminSettings?
    public var upstreams: [String: UpstreamSettings]
    public var routes: RouteTable
    public var accessLog: AccessLogSettings
    /// SPEC §2 `jwt`; nil when the config has no `jwt` section (no Bearer authentication).
    public var jwt: JWTSettings?
    /// SPEC §2 `sessions`; nil when the config has no `sessions` section (no session cookies,
    /// no login, keepalive or logout endpoints).
    public var sessions: SessionSettings?
    /// SPEC §2 `identity_headers`, with the defaults when the section is absent.
    public var identityHeaders: IdentityHeaders
    /// The global CORS policy (SPEC §2 `cors`, §6); nil when absent. A route's own policy is
    /// ``Route/cors``.
    public var cors: CORSPolicy?
    /// SPEC §2 `forward_auth`, §11; nil when absent (no decision endpoint).
    public var forwardAuth: ForwardAuthSettings?
    /// Each route's `require`, indexed by ``Route/index``; nil when the route has none.
    /// Prefer ``requirement(for:)``.
    public var requirements: [Requirement?]
    /// SPEC §2 `rate_limits` (the defaults when absent).
    public var rateLimits = RateLimitSettings()
    /// The header names (lowercased) that some route's `rate_limit` keys on (`header:NAME`):
    /// the edge reads these for a trusted peer.
    public var rateLimitHeaders: [String] = []
    /// Whether any route has a `rate_limit`: only then does the edge read the client facts that
    /// keys need (set by the loader; a config built by hand sets it itself).
    public var hasRateLimits = false

    public init(path: String, server: ServerSettings, admin: AdminSettings?, upstreams: [String: UpstreamSettings],
                routes: RouteTable, accessLog: AccessLogSettings, jwt: JWTSettings? = nil,
                identityHeaders: IdentityHeaders = IdentityHeaders(), cors: CORSPolicy? = nil,
                requirements: [Requirement?] = [], sessions: SessionSettings? = nil,
                forwardAuth: ForwardAuthSettings? = nil) {
        self.path = path; self.server = server; self.admin = admin; self.upstreams = upstreams
        self.routes = routes; self.accessLog = accessLog; self.jwt = jwt; self.identityHeaders = identityHeaders
        self.cors = cors; self.requirements = requirements; self.sessions = sessions
        self.forwardAuth = forwardAuth
    }

    /// The route's `require`; nil when it has none (also for an index outside ``requirements``,
    /// as in a config built by hand without them).
    public func requirement(for route: Route) -> Requirement? {
        requirements.indices.contains(route.index) ? requirements[route.index] : nil
    }

    /// The CORS policy that applies on `route` (nil: none): its own block, none for
    /// `cors: false`, else the global one (SPEC §2: a route's block replaces the global one).
    public func corsPolicy(for route: Route) -> CORSPolicy? {
        switch route.cors {
        case .inherit: return cors
        case .disabled: return nil
        case .custom(let policy): return policy
        }
    }
}

/// `host:port`; IPv6 hosts without brackets (`::1`), written `[::1]:8080` in the config.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public init(host: String, port: UInt16) { self.host = host; self.port = port }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// SPEC §2 `server`.
public struct ServerSettings: Sendable {
    public var listen: [ListenAddress]
    /// Event-loop threads; already resolved (0 in the file becomes the core count).
    public var workers: Int
    public var maxHeaderBytes: Int
    public var maxBodyBytes: Int
    public var readTimeoutMs: Int64
    public var shutdownGraceMs: Int64
    public var trustedProxies: [CIDR]
    public var publicOrigin: String?
    public var pathPolicy: PathPolicy
    /// `tls`: nil for plain HTTP.
    public var tls: ServerTLSFiles?
    /// `header_timeout`: the whole request head must arrive within this, from its first byte (SPEC §3.2).
    public var headerTimeoutMs: Int64 = 10_000
    /// `max_connections`: client connections per worker; 0 = derived from the open-file limit (SPEC §3.2).
    public var maxConnections: Int = 0
    /// `tunnel_idle_timeout`: a WebSocket tunnel with no byte either way for this long is closed (SPEC §12).
    public var tunnelIdleTimeoutMs: Int64 = 600_000

    public init(listen: [ListenAddress], workers: Int, maxHeaderBytes: Int, maxBodyBytes: Int, readTimeoutMs: Int64,
                shutdownGraceMs: Int64, trustedProxies: [CIDR], publicOrigin: String?, pathPolicy: PathPolicy,
                tls: ServerTLSFiles? = nil) {
        self.listen = listen; self.workers = workers; self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes; self.readTimeoutMs = readTimeoutMs; self.shutdownGraceMs = shutdownGraceMs
        self.trustedProxies = trustedProxies; self.publicOrigin = publicOrigin; self.pathPolicy = pathPolicy
        self.tls = tls
    }
}

/// SPEC §2 `admin`.
public struct AdminSettings: Sendable {
    public var listen: ListenAddress
    public init(listen: ListenAddress) { self.listen = listen }
}

/// One upstream target: `http://host:port` (plain HTTP; the port defaults to 80).
public struct UpstreamTarget: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    /// `https://`: TLS to the target, its certificate verified against the system's trust store
    /// and `host`.
    public var tls: Bool
    public init(host: String, port: UInt16, tls: Bool = false) { self.host = host; self.port = port; self.tls = tls }
    /// The `Host` header value for this target (`preserve_host: false`): `host`, or `host:port`
    /// when the port is not the scheme's default.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }
    public var description: String { (tls ? "https://" : "http://") + hostHeader }
}

/// SPEC §2 `upstreams.NAME`.
public struct UpstreamSettings: Sendable {
    public var name: String
    public var targets: [UpstreamTarget]
    public var connectTimeoutMs: Int64
    public var timeoutMs: Int64
    public var maxIdlePerWorker: Int
    public var preserveHost: Bool
    public init(name: String, targets: [UpstreamTarget], connectTimeoutMs: Int64 = 2000, timeoutMs: Int64 = 30000,
                maxIdlePerWorker: Int = 32, preserveHost: Bool = true) {
        self.name = name; self.targets = targets; self.connectTimeoutMs = connectTimeoutMs; self.timeoutMs = timeoutMs
        self.maxIdlePerWorker = maxIdlePerWorker; self.preserveHost = preserveHost
    }
}

/// SPEC §2 `access_log`.
public struct AccessLogSettings: Sendable {
    public enum Format: String, Sendable, CaseIterable { case json, combined }
    /// `stdout`, or an absolute file path (relative paths are resolved by the loader).
    public var path: String
    public var format: Format
    public init(path: String = "stdout", format: Format = .json) { self.path = path; self.format = format }
}

/// One problem found while loading: `FILE:LINE:COL: error: message` (SPEC §10).
public struct ConfigProblem: Sendable, CustomStringConvertible, Equatable {
    public enum Severity: String, Sendable { case error, warning }
    public var location: SourceLocation
    public var severity: Severity
    public var message: String
    public init(_ severity: Severity, at location: SourceLocation, _ message: String) {
        self.severity = severity; self.location = location; self.message = message
    }
    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

/// What loading produced: a config when there were no errors, and every problem found.
public struct ConfigLoadResult: Sendable {
    public var config: GatewayConfig?
    public var problems: [ConfigProblem]
    public init(config: GatewayConfig?, problems: [ConfigProblem]) { self.config = config; self.problems = problems }
    public var errors: [ConfigProblem] { problems.filter { $0.severity == .error } }
    public var warnings: [ConfigProblem] { problems.filter { $0.severity == .warning } }
}
