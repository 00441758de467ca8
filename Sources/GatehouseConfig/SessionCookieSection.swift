import GatehouseSessions

/// `sessions.cookie` (SPEC §2, §5.3; RFC 6265): name, `Secure`, `SameSite`, `Domain`, `Path`.
/// Combinations that browsers refuse to store are errors here, not silent logins that never stick.
enum SessionCookieSection {
    /// What was read: the cookie, with the defaults for what is unset or invalid (the invalid
    /// parts are reported), and for the no-TLS warning the `secure` value's node when written
    /// and whether it was invalid.
    struct Reading {
        var cookie = SessionCookie()
        var secureNode: ConfigNode?
        var secureIsInvalid = false
    }

    static func read(_ node: ConfigNode?, _ diagnostics: Diagnostics) -> Reading {
        var result = Reading()
        guard let node, let fields = node.fields(ConfigKeys.sessionCookie, diagnostics) else { return result }
        var cookie = SessionCookie()
        var nameNode: ConfigNode?
        if let valueNode = fields["name"], let name = valueNode.string(diagnostics) {
            if HTTPToken.isToken(name) {
                cookie.name = name
                nameNode = valueNode
            } else {
                diagnostics.error(valueNode, "expected a cookie name (RFC 6265: letters, digits and "
                                      + "!#$%&'*+-.^_`|~), got \(quoted(name))")
            }
        }
        if let secureNode = fields["secure"] {
            result.secureNode = secureNode
            if let secure = secureNode.bool(diagnostics) { cookie.secure = secure } else { result.secureIsInvalid = true }
        }
        var sameSiteNode: ConfigNode?
        if let valueNode = fields["same_site"], let text = valueNode.string(diagnostics) {
            if let sameSite = SessionCookie.SameSite(rawValue: text) {
                cookie.sameSite = sameSite
                sameSiteNode = valueNode
            } else {
                diagnostics.error(valueNode, "expected one of Strict, Lax, None, got \(quoted(text))")
            }
        }
        var domainNode: ConfigNode?
        if let valueNode = fields["domain"], let text = valueNode.string(diagnostics) {
            switch domain(text) {
            case .success(let value): cookie.domain = value; domainNode = valueNode
            case .failure(let error): diagnostics.error(valueNode, error.message)
            }
        }
        var pathNode: ConfigNode?
        if let valueNode = fields["path"], let text = valueNode.string(diagnostics) {
            if let problem = pathProblem(text) {
                diagnostics.error(valueNode, problem.message)
            } else {
                cookie.path = text
                pathNode = valueNode
            }
        }

        // `SameSite.none`, spelled out: `.none` alone would be Optional's.
        if cookie.sameSite == SessionCookie.SameSite.none, !cookie.secure, let sameSiteNode {
            diagnostics.error(sameSiteNode, "None needs secure: true (browsers refuse a SameSite=None cookie "
                                  + "without Secure)")
        }
        if let nameNode { prefixRules(cookie, nameNode: nameNode, domainNode: domainNode, pathNode: pathNode, diagnostics) }
        result.cookie = cookie
        return result
    }

    /// RFC 6265bis §4.1.3: browsers store a `__Secure-` cookie only with `Secure`, and a
    /// `__Host-` cookie only with `Secure`, `Path=/` and no `Domain`.
    private static func prefixRules(_ cookie: SessionCookie, nameNode: ConfigNode, domainNode: ConfigNode?,
                                    pathNode: ConfigNode?, _ diagnostics: Diagnostics) {
        let lower = cookie.name.lowercased()
        let prefix = lower.hasPrefix("__host-") ? "__Host-" : lower.hasPrefix("__secure-") ? "__Secure-" : nil
        guard let prefix else { return }
        if !cookie.secure {
            diagnostics.error(nameNode, "a \(prefix) cookie needs secure: true (browsers refuse it otherwise)")
        }
        guard prefix == "__Host-" else { return }
        if let domainNode {
            diagnostics.error(domainNode, "a __Host- cookie has no domain (browsers refuse it otherwise)")
        }
        if let pathNode, cookie.path != "/" {
            diagnostics.error(pathNode, "a __Host- cookie needs path: / (browsers refuse it otherwise)")
        }
    }

    /// `Domain`: a host name or address without scheme, port or path; one leading dot (which
    /// RFC 6265 §5.2.3 ignores) is dropped; lowercased.
    private static func domain(_ text: String) -> Result<String, SyntaxError> {
        let bare = text.hasPrefix(".") ? String(text.dropFirst()) : text
        if bare.contains(where: { ":/[]@".contains($0) }) {
            return .failure(SyntaxError("expected a domain like example.com (no scheme, port or path), got \(quoted(text))"))
        }
        return AddressSyntax.host(bare)
    }

    /// `Path`: starts with `/`; no `;` (it ends the attribute), spaces or control characters.
    private static func pathProblem(_ text: String) -> SyntaxError? {
        guard text.hasPrefix("/"),
              !text.unicodeScalars.contains(where: { $0 == ";" || $0.value <= 0x20 || $0.value == 0x7F }) else {
            return SyntaxError("expected a path starting with / without ;, spaces or control characters, got \(quoted(text))")
        }
        return nil
    }

    /// Whether a browser sends a cookie with `Path=cookiePath` to `requestPath`
    /// (RFC 6265 §5.1.4 path-match).
    static func pathMatches(cookiePath: String, requestPath: String) -> Bool {
        if requestPath == cookiePath { return true }
        guard requestPath.hasPrefix(cookiePath) else { return false }
        return cookiePath.hasSuffix("/") || requestPath.dropFirst(cookiePath.count).hasPrefix("/")
    }
}
