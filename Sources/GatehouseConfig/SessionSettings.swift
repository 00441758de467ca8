import GatehouseSessions

/// SPEC §2 `sessions`, validated (SPEC §5.3): the session cookie, the timeouts, the store, the
/// login endpoint and the gateway's other session endpoints.
public struct SessionSettings: Sendable {
    /// `keepalive_path` when the config leaves it unset.
    public static let defaultKeepalivePath = "/keepalive"
    /// `logout_path` when the config leaves it unset.
    public static let defaultLogoutPath = "/logout"

    /// The cookie's name and attributes (RFC 6265); the gateway adds `HttpOnly` and `Max-Age`.
    public var cookie: SessionCookie
    /// `idle_timeout` in seconds (default 30m): a session unused this long has ended.
    public var idleTimeout: Int64
    /// `absolute_timeout` in seconds (default 12h, never below ``idleTimeout``): a session
    /// ends this long after login whatever its use.
    public var absoluteTimeout: Int64
    /// Where sessions live (default ``SessionStoreSetting/memory``).
    public var store: SessionStoreSetting
    /// The login endpoint and its users; nil when the config has no `login` block (no session
    /// can then be created by this instance).
    public var login: LoginSettings?
    /// `POST` here refreshes the idle timer (204). Default ``defaultKeepalivePath``; nil when the
    /// config turns the endpoint off with `keepalive_path: false`.
    public var keepalivePath: String?
    /// `POST` here revokes the session and clears the cookie (204). Default
    /// ``defaultLogoutPath``; nil with `logout_path: false`.
    public var logoutPath: String?
    /// Browser login through an OpenID provider (SPEC §14.2); nil without `sessions.oidc`.
    public var oidc: OIDCLoginSettings?

    /// The settings of a `sessions` section; the defaults are SPEC §2's.
    public init(cookie: SessionCookie = SessionCookie(), idleTimeout: Int64 = 1800, absoluteTimeout: Int64 = 43_200,
                store: SessionStoreSetting = .memory, login: LoginSettings? = nil,
                keepalivePath: String? = defaultKeepalivePath, logoutPath: String? = defaultLogoutPath) {
        self.cookie = cookie
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.store = store
        self.login = login
        self.keepalivePath = keepalivePath
        self.logoutPath = logoutPath
    }

    /// The gateway endpoint at a normalized request path (SPEC §3 step 4), or nil. The loader
    /// keeps the three paths distinct, so a path names at most one endpoint.
    public func endpoint(at path: String) -> SessionEndpoint? {
        if let login, path == login.path { return .login }
        if path == keepalivePath { return .keepalive }
        if path == logoutPath { return .logout }
        if let oidc {
            if path == oidc.loginPath { return .oidcLogin }
            if path == oidc.callbackPath { return .oidcCallback }
        }
        return nil
    }
}

/// The gateway's own session endpoints (SPEC §3 step 4, §5.3, §14.2): login, keepalive and
/// logout answered to `POST`, the OIDC login and callback to `GET`.
public enum SessionEndpoint: String, Sendable, CaseIterable {
    case login, keepalive, logout
    case oidcLogin = "OIDC login", oidcCallback = "OIDC callback"
}

/// `sessions.store`: `memory` (one instance) or a Redis server shared by several instances.
public enum SessionStoreSetting: Sendable, Equatable, CustomStringConvertible {
    /// Sessions in this process only (the default).
    case memory
    /// `redis://[:password@]host[:port][/db]`: `host` lowercased, an IPv6 address without
    /// brackets; `port` 6379 and `db` 0 when not written; `password` percent-decoded (sent with
    /// `AUTH`), nil when the URL has none.
    case redis(host: String, port: UInt16, db: Int, password: String?)

    /// `memory`, or the Redis URL with its password masked (`redis://:***@host:6379/0`), for
    /// logs and messages.
    public var description: String {
        switch self {
        case .memory:
            return "memory"
        case let .redis(host, port, db, password):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(password == nil ? "" : ":***@")\(h):\(port)/\(db)"
        }
    }
}

/// `sessions.login`: the login endpoint (SPEC §5.3), the users who may log in and their roles,
/// and login throttling.
public struct LoginSettings: Sendable {
    /// `POST` here with `username` and `password` (form or JSON) creates a session. Default `/login`.
    public var path: String
    /// The users file's hashes and the dummy hash for unknown users.
    public var verifier: PasswordVerifier
    /// Roles by user name, as `roles` lists them; a user without an entry has no roles.
    public var roles: [String: [String]]
    /// Failed logins per username and client within ``failureWindow`` before every attempt is
    /// refused with 429 (default 5, at least 1).
    public var maxFailures: Int
    /// `failure_window` in seconds (default 15m).
    public var failureWindow: Int64
    /// The users file's absolute path (for reload messages).
    public var usersFile: String

    /// Login settings; `maxFailures` and `failureWindow` default to SPEC §2's values.
    public init(path: String = "/login", verifier: PasswordVerifier, roles: [String: [String]] = [:],
                maxFailures: Int = 5, failureWindow: Int64 = 900, usersFile: String) {
        self.path = path
        self.verifier = verifier
        self.roles = roles
        self.maxFailures = maxFailures
        self.failureWindow = failureWindow
        self.usersFile = usersFile
    }

    /// The roles of `user` (empty when `roles` has no entry for them).
    public func roles(of user: String) -> [String] { roles[user] ?? [] }
}
