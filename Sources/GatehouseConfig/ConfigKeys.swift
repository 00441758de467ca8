/// The key tables of the configuration (SPEC §2), in documentation order — the order in which
/// an "unknown key" message lists the valid ones.
enum ConfigKeys {
    static let topLevel = ["server", "admin", "upstreams", "jwt", "sessions", "forward_auth", "cors", "identity_headers",
                           "routes", "policy_files", "access_log", "rate_limits"]
    static let server = ["listen", "workers", "max_header_bytes", "max_body_bytes", "read_timeout",
                         "shutdown_grace", "trusted_proxies", "public_origin", "path_policy", "tls", "header_timeout",
                         "max_connections", "tunnel_idle_timeout"]
    static let serverTLS = ["cert", "key"]
    static let admin = ["listen"]
    static let upstream = ["targets", "connect_timeout", "timeout", "max_idle_per_worker", "preserve_host"]
    static let jwt = ["roles_claim", "leeway", "issuers"]
    static let jwtIssuer = ["name", "issuer", "audiences", "algorithms", "secret_file", "secret_env", "jwks_file",
                            "jwks_url", "discovery", "introspection"]
    static let introspection = ["client_id", "client_secret_file", "cache"]
    static let sessions = ["cookie", "idle_timeout", "absolute_timeout", "store", "login", "keepalive_path",
                           "logout_path", "oidc"]
    static let sessionsOIDC = ["issuer", "client_id", "client_secret_file", "login_path", "callback_path", "scopes",
                               "roles_claim"]
    static let sessionCookie = ["name", "secure", "same_site", "domain", "path"]
    static let login = ["path", "users_file", "roles", "max_failures", "failure_window"]
    static let forwardAuth = ["path", "style", "allow_from"]
    static let cors = ["allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials",
                       "max_age"]
    static let identityHeaders = ["subject", "roles", "method", "claims"]
    static let route = ["name", "match", "upstream", "auth", "require", "deny_status", "issuers", "strip_authorization",
                        "login_redirect", "cors", "rate_limit", "mode", "websocket"]
    static let routeMatch = ["path", "methods", "host"]
    static let require = ["roles_any", "roles_all", "scopes_all", "claims"]
    static let accessLog = ["path", "format"]
    /// A policy file (SPEC §2 `policy_files`) holds one route list and nothing else.
    static let policyFile = ["routes"]

    /// Keys of the contract that this build does not implement yet, as schema paths (names
    /// erased to `*`, list indexes to `[]`; policy files share the `routes[]` paths). Each is
    /// refused with "KEY: not supported yet" rather than silently ignored, because a check that
    /// silently does not happen would weaken security. Delete an entry when its feature lands and add
    /// its key to the table above.
    static let notYetSupported: Set<String> = []
}
