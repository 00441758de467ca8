import GatehouseCore
import GatehousePolicy
import GatehouseSessions

/// The `sessions` section (SPEC §2, §5.3): cookie, timeouts, store, login and the gateway's
/// session endpoints. The users file is read here (``LoginSection``), so `check` reports it.
struct SessionsSection {
    /// The validated settings; nil when the section is absent or anything in it is invalid.
    private(set) var settings: SessionSettings?
    /// Whether the config has a `sessions` section: then there is an authenticator.
    let isPresent: Bool
    /// The gateway endpoint paths that the gateway answers (valid ones only, even when other
    /// keys have errors), with the key that sets each, for the route warnings.
    private(set) var endpoints: [(path: String, key: String)] = []
    /// `sessions.oidc`, cross-checked against `jwt` by the loader.
    private(set) var oidc: OIDCLoginSection?

    static let noTLSWarning = "sessions.cookie.secure is on but the gateway has no TLS: browsers send the cookie "
        + "only over https (terminate TLS in front, or set secure: false for local testing)"

    /// `serverHasTLS`: whether `server.tls` is set (it decides the `secure` warning).
    init(_ node: ConfigNode?, configDirectory: String, cwd: String, serverHasTLS: Bool, _ diagnostics: Diagnostics) {
        isPresent = node != nil
        guard let node, let fields = node.fields(ConfigKeys.sessions, diagnostics) else { return }
        let errorsBefore = diagnostics.errorCount

        let cookieNode = fields["cookie"]
        let read = SessionCookieSection.read(cookieNode, diagnostics)
        let cookie = read.cookie
        if cookie.secure, !read.secureIsInvalid, !serverHasTLS {
            diagnostics.warning((read.secureNode ?? cookieNode ?? node).location, Self.noTLSWarning)
        }

        let idleNode = fields["idle_timeout"], absoluteNode = fields["absolute_timeout"]
        let idle = idleNode?.seconds(allowZero: false, diagnostics)
        let absolute = absoluteNode?.seconds(allowZero: false, diagnostics)
        var settings = SessionSettings(cookie: cookie)
        if let idle { settings.idleTimeout = idle }
        if let absolute { settings.absoluteTimeout = absolute }
        if (idleNode == nil || idle != nil) && (absoluteNode == nil || absolute != nil),
           settings.absoluteTimeout < settings.idleTimeout {
            let at = absoluteNode ?? idleNode ?? node
            diagnostics.error(at.location, "sessions.absolute_timeout (\(Self.duration(settings.absoluteTimeout))) "
                                  + "is shorter than sessions.idle_timeout (\(Self.duration(settings.idleTimeout))); "
                                  + "it must be at least as long")
        }

        if let storeNode = fields["store"], let text = storeNode.string(diagnostics) {
            switch AddressSyntax.sessionStore(text) {
            case .success(let store): settings.store = store
            case .failure(let error): diagnostics.error(storeNode, error.message)
            }
        }

        var paths: [(path: String, key: String, node: ConfigNode?)] = []
        let login = fields["login"].map { LoginSection($0, configDirectory: configDirectory, cwd: cwd, diagnostics) }
        if let login, !login.pathIsInvalid { paths.append((login.path, "sessions.login.path", login.pathNode)) }
        settings.keepalivePath = Self.endpointPath(fields, "keepalive_path", default: SessionSettings.defaultKeepalivePath,
                                                   into: &paths, diagnostics)
        settings.logoutPath = Self.endpointPath(fields, "logout_path", default: SessionSettings.defaultLogoutPath,
                                                into: &paths, diagnostics)
        oidc = fields["oidc"].map { OIDCLoginSection($0, configDirectory: configDirectory, paths: &paths, diagnostics) }
        endpoints = Self.distinct(paths, diagnostics)
        Self.checkCookieReaches(cookie, cookieNode: cookieNode ?? node, paths: paths, diagnostics)

        if login == nil && oidc == nil {
            // Sessions follow the users file (SPEC §3.2): without one, no session is accepted.
            diagnostics.warning(node, settings.store == .memory
                ? "no login block and the store is memory: no session can ever be created"
                : "no login block: this instance has no users file to check sessions against and refuses every session cookie")
        }
        guard diagnostics.errorCount == errorsBefore else { return }
        settings.login = login?.settings
        settings.oidc = oidc?.settings
        self.settings = settings
    }

    /// `keepalive_path` / `logout_path`: a path, the default when unset, nil for `false`.
    private static func endpointPath(_ fields: Fields, _ key: String, default: String,
                                     into paths: inout [(path: String, key: String, node: ConfigNode?)],
                                     _ diagnostics: Diagnostics) -> String? {
        guard let node = fields[key] else {
            paths.append((`default`, "sessions.\(key)", nil))
            return `default`
        }
        if node.node.scalar != nil, node.node.tagName == .bool {
            if node.node.bool == false { return nil }
            diagnostics.error(node, "true is not a path: write a path like \(`default`), or false to turn the endpoint off")
            return `default`
        }
        guard let text = node.string(diagnostics) else { return `default` }
        if let problem = EndpointPath.problem(text) {
            diagnostics.error(node, problem.message)
            return `default`
        }
        paths.append((text, "sessions.\(key)", node))
        return text
    }

    /// The endpoint paths without repeats; a repeat is an error at the one written later.
    private static func distinct(_ paths: [(path: String, key: String, node: ConfigNode?)],
                                 _ diagnostics: Diagnostics) -> [(path: String, key: String)] {
        var kept: [(path: String, key: String, node: ConfigNode?)] = []
        for entry in paths {
            guard let first = kept.first(where: { $0.path == entry.path }) else {
                kept.append(entry)
                continue
            }
            // At least one of the two was written (the defaults differ); blame a written one.
            let at = entry.node ?? first.node
            let other = at?.path == entry.key ? first : entry
            let shownOther = other.node == nil ? "\(other.key) (its default)" : other.key
            if let at {
                diagnostics.error(at, "\(quoted(entry.path)) is also \(shownOther); each gateway endpoint needs "
                                      + "its own path")
            }
        }
        return kept.map { ($0.path, $0.key) }
    }

    /// Keepalive and logout find the session by its cookie: the cookie's `Path` must cover them.
    private static func checkCookieReaches(_ cookie: SessionCookie, cookieNode: ConfigNode,
                                           paths: [(path: String, key: String, node: ConfigNode?)],
                                           _ diagnostics: Diagnostics) {
        for entry in paths where entry.key != "sessions.login.path"
        && !SessionCookieSection.pathMatches(cookiePath: cookie.path, requestPath: entry.path) {
            diagnostics.warning((entry.node ?? cookieNode).location,
                                "\(entry.key) \(quoted(entry.path)) is outside sessions.cookie.path "
                                    + "\(quoted(cookie.path)): browsers do not send the cookie there, so the "
                                    + "endpoint never finds a session")
        }
    }

    /// Seconds as the shortest exact duration (`30m`, `12h`, `90s`).
    static func duration(_ seconds: Int64) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// SPEC §3 step 4: the gateway answers `POST` on its endpoint paths before any route is
    /// matched, so a route whose match takes such a request never sees it (a warning).
    func warnAboutShadowedRoutes(_ table: RouteTable, _ diagnostics: Diagnostics) {
        guard !endpoints.isEmpty else { return }
        for route in table.routes where route.match.methods?.contains("POST") ?? true {
            let hidden = endpoints.filter { route.match.path.matches($0.path) }
            guard !hidden.isEmpty else { continue }
            let list = hidden.map { "POST \($0.path)" }
            let joined = list.count == 1 ? list[0] : list.dropLast().joined(separator: ", ") + " or " + list.last!
            let keys = hidden.map(\.key).joined(separator: ", ")
            diagnostics.warning(route.location, "route \(quoted(route.name)) never sees \(joined): the gateway "
                                    + "answers \(hidden.count == 1 ? "it" : "them") (\(keys))")
        }
    }
}

/// A gateway endpoint path (`login.path`, `keepalive_path`, `logout_path`) is compared with the
/// normalized request path (SPEC §4.1), so it must be one: a request could never equal it otherwise.
enum EndpointPath {
    static func problem(_ text: String) -> SyntaxError? {
        guard text.hasPrefix("/") else { return SyntaxError("expected a path starting with /, got \(quoted(text))") }
        guard let normalized = PathNormalizer.normalize(target: text, policy: .strict),
              normalized.query == nil, normalized.path == text else {
            return SyntaxError("expected a normalized path (no query, no . or .. segments, no repeated slashes, "
                                   + "no escapes that the gateway decodes or refuses), got \(quoted(text))")
        }
        return nil
    }
}
