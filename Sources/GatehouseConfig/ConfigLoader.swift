#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatehouseCore
import GatehousePolicy

/// Loads and validates a config file and everything it names (policy files), collecting every
/// problem with its `FILE:LINE:COL` (SPEC §2, §10). YAML is composed into a node tree (Yams),
/// walked with key paths and positions, and only then turned into domain values. Key files,
/// `secret_env` variables and the users file are read too, so a config that loads has every
/// key and user it names.
public enum ConfigLoader {
    /// Most routes checked pairwise for shadowing (SPEC §3.2: loading stays fast for any file
    /// within the size limit).
    static let maxShadowCheckedRoutes = 1000

    /// `path` as given on the command line: messages show it as written, and relative paths
    /// inside the file resolve against its directory. `cpuCount` resolves `workers: 0`.
    /// `tlsCheck` loads `server.tls`'s files (`ServerTLSContext.check` from GatehouseTLS, which
    /// has OpenSSL; the default only sees that they are readable).
    public static func load(path: String, cpuCount: Int, tlsCheck: @escaping ServerTLSFiles.Check = ServerTLSFiles.readable)
        -> ConfigLoadResult {
        load(path: path, cpuCount: cpuCount, cwd: ConfigPaths.currentDirectory(), tlsCheck: tlsCheck)
    }

    /// `cwd` makes relative results absolute (the access log path); `environment` reads
    /// `secret_env` variables. Both injectable for tests.
    static func load(path: String, cpuCount: Int, cwd: String,
                     environment: @escaping (String) -> String? = processEnvironment,
                     tlsCheck: @escaping ServerTLSFiles.Check = ServerTLSFiles.readable) -> ConfigLoadResult {
        let diagnostics = Diagnostics()
        guard let root = YAMLSource.load(path: path, file: path, diagnostics) else {
            return ConfigLoadResult(config: nil, problems: diagnostics.problems)
        }
        let directory = ConfigPaths.directory(of: path)
        let top = root.fields(ConfigKeys.topLevel, diagnostics)

        var server = SettingsSections.server(top?["server"], configDirectory: directory, cwd: cwd, cpuCount: cpuCount,
                                             tlsCheck: tlsCheck, diagnostics)
        let admin = SettingsSections.admin(top?["admin"], publicListen: server.listen, diagnostics)
        let upstreams = UpstreamsSection(top?["upstreams"], diagnostics)
        let jwt = JWTSection(top?["jwt"], configDirectory: directory, environment: environment, diagnostics)
        // Written at all (even when its files have problems): the `secure` warning is about intent.
        let serverHasTLS = top?["server"]?.node.mapping?["tls"] != nil
        let sessions = SessionsSection(top?["sessions"], configDirectory: directory, cwd: cwd,
                                       serverHasTLS: serverHasTLS, diagnostics)
        let forwardAuth = ForwardAuthSection.read(top?["forward_auth"], sessionEndpoints: sessions.endpoints, diagnostics)
        let cors = top?["cors"].flatMap { CORSSection.policy($0, diagnostics) }
        let identityHeaders = IdentityHeadersSection.read(top?["identity_headers"], diagnostics)

        let routes = RouteCollector(upstreams: upstreams.names, issuers: jwt.isPresent ? jwt.declaredNames : nil,
                                    hasSessions: sessions.isPresent, diagnostics)
        if let list = top?["routes"] { routes.read(list) }
        for match in PolicyFiles.expand(top?["policy_files"], configDirectory: directory, diagnostics) {
            PolicyFiles.load(match, into: routes, diagnostics)
        }
        let accessLog = SettingsSections.accessLog(top?["access_log"], configDirectory: directory, cwd: cwd, diagnostics)

        for upstream in upstreams.declared
        where Names.isValid(upstream.name) && !routes.usedUpstreams.contains(upstream.name) {
            diagnostics.warning(upstream.location, "upstreams.\(upstream.name): no route uses this upstream")
        }
        // Not when the file or `routes` has the wrong shape: that error says enough.
        if routes.declaredCount == 0, let top, top["routes"].map({ $0.node.sequence != nil }) ?? true {
            diagnostics.warning(top["routes"]?.location ?? SourceLocation(file: path),
                                "no routes: every request gets 404")
        }
        let table = RouteTable(routes.routes)
        // With fewer than two routes nothing can shadow anything. The check compares every pair:
        // beyond `maxShadowCheckedRoutes` it would cost minutes (a 4 MiB policy file holds ~50,000
        // routes), so it is skipped, with a warning that says so.
        if table.routes.count > maxShadowCheckedRoutes {
            diagnostics.warning(top?["routes"]?.location ?? SourceLocation(file: path),
                                "\(table.routes.count) routes: more than \(maxShadowCheckedRoutes), so routes that can "
                                    + "never match are not looked for")
        } else if table.routes.count > 1 {
            for pair in table.shadowed() {
                let by = pair.by.location
                diagnostics.warning(pair.shadowed.location,
                                    "route \(quoted(pair.shadowed.name)) can never match: route \(quoted(pair.by.name)) "
                                        + "(\(by.file):\(by.line)) matches everything it does")
            }
        }

        sessions.warnAboutShadowedRoutes(table, diagnostics)
        let rateLimits = RateLimitSection.settings(top?["rate_limits"], diagnostics)
        RateLimitSection.warn(table.routes, trustedProxies: server.trustedProxies, diagnostics)
        sessions.oidc?.crossCheck(jwt: jwt.settings, jwtPresent: jwt.isPresent, publicOrigin: server.publicOrigin, diagnostics)

        guard !diagnostics.hasErrors else { return ConfigLoadResult(config: nil, problems: diagnostics.problems) }
        // The peers that may ask forward auth count as trusted proxies (SPEC §11): the client
        // address comes from their X-Forwarded-For.
        for cidr in forwardAuth?.allowFrom ?? [] where !server.trustedProxies.contains(cidr) {
            server.trustedProxies.append(cidr)
        }
        var config = GatewayConfig(path: path, server: server, admin: admin, upstreams: upstreams.settings,
                                   routes: table, accessLog: accessLog, jwt: jwt.settings,
                                   identityHeaders: identityHeaders, cors: cors, requirements: routes.requirements,
                                   sessions: sessions.settings, forwardAuth: forwardAuth)
        config.rateLimits = rateLimits
        config.rateLimitHeaders = RateLimitSection.headerNames(table.routes)
        config.hasRateLimits = table.routes.contains { $0.rateLimit != nil }
        return ConfigLoadResult(config: config, problems: diagnostics.problems)
    }
}

/// The process environment, read when the config is loaded (and again on each reload).
func processEnvironment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}
