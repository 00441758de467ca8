import GatehouseCore

/// The `identity_headers` section (SPEC §2, §7.1): header names for the caller's identity.
enum IdentityHeadersSection {
    /// Headers that cannot carry an identity: hop-by-hop headers (RFC 9110 §7.6.1) would be
    /// dropped on the way, and the others mean something else to the upstream or are set by
    /// the gateway itself (SPEC §7.1).
    static let reserved: [String: String] = [
        "connection": "a hop-by-hop header", "keep-alive": "a hop-by-hop header", "te": "a hop-by-hop header",
        "trailer": "a hop-by-hop header", "transfer-encoding": "a hop-by-hop header",
        "upgrade": "a hop-by-hop header", "proxy-authorization": "a hop-by-hop header",
        "proxy-connection": "a hop-by-hop header", "proxy-authenticate": "a hop-by-hop header",
        "host": "the request's target host", "content-length": "the body's framing",
        "authorization": "the client's credentials", "cookie": "the client's cookies",
        "x-forwarded-for": "set by the gateway", "x-forwarded-proto": "set by the gateway",
        "x-forwarded-host": "set by the gateway", "x-request-id": "set by the gateway",
        "x-real-ip": "set by the gateway",
    ]

    /// The defaults for what is unset; invalid names are reported.
    static func read(_ node: ConfigNode?, _ diagnostics: Diagnostics) -> IdentityHeaders {
        var headers = IdentityHeaders()
        guard let fields = node?.fields(ConfigKeys.identityHeaders, diagnostics) else { return headers }
        // Defaults take part in the duplicate check too: `claims: {X-Auth-Subject: email}`
        // would collide with the default subject header.
        var seen: [String: String] = [:]
        /// Checks the name of the header at `path` (reported at `location`).
        func accept(_ name: String, at location: SourceLocation, path: String) -> Bool {
            if let problem = problem(name) {
                diagnostics.error(location, "\(path): \(problem)")
                return false
            }
            if let first = seen[name.lowercased()] {
                diagnostics.error(location,
                                  "\(path): \(quoted(name)) is already used by \(first); header names are case-insensitive")
                return false
            }
            seen[name.lowercased()] = path
            return true
        }
        // Defaults first, so that a configured name that collides with one is the error.
        let keys = ["subject", "roles", "method"]
        for key in keys where fields[key] == nil {
            seen[defaultName(key, headers).lowercased()] = "identity_headers.\(key) (default)"
        }
        for key in keys {
            guard let value = fields[key], let name = value.string(diagnostics),
                  accept(name, at: value.location, path: value.path) else { continue }
            switch key {
            case "subject": headers.subject = name
            case "roles": headers.roles = name
            default: headers.method = name
            }
        }
        if let claimsNode = fields["claims"], let entries = claimsNode.entries(diagnostics) {
            var claims: [(header: String, claim: String)] = []
            for entry in entries {
                let value = claimsNode.named(entry.key, entry.value)
                guard accept(entry.key, at: entry.keyLocation, path: value.path) else { continue }
                guard let path = value.string(diagnostics) else { continue }
                if let problem = ClaimPath.problem(path) {
                    diagnostics.error(value, problem)
                    continue
                }
                claims.append((entry.key, path))
            }
            headers.claims = claims
        }
        return headers
    }

    private static func defaultName(_ key: String, _ headers: IdentityHeaders) -> String {
        switch key {
        case "subject": return headers.subject
        case "roles": return headers.roles
        default: return headers.method
        }
    }

    /// Why `name` cannot be an identity header; nil when it can.
    static func problem(_ name: String) -> String? {
        guard HTTPToken.isToken(name) else { return "expected a header name (RFC 9110 token), got \(quoted(name))" }
        if let reason = reserved[name.lowercased()] {
            return "\(quoted(name)) cannot carry an identity: it is \(reason)"
        }
        return nil
    }
}

/// A dotted claim path (SPEC §2 `roles_claim`, `require.claims`, `identity_headers.claims`):
/// `roles`, `realm_access.roles`, or a claim whose own name has dots or slashes
/// (`https://example.com/roles`). Empty segments are refused: they match nothing.
enum ClaimPath {
    static func problem(_ path: String) -> String? {
        if path.isEmpty { return "expected a claim name or dotted path like realm_access.roles, got \"\"" }
        if path.hasPrefix(".") || path.hasSuffix(".") || path.contains("..") {
            return "a dotted claim path has no empty parts, got \(quoted(path))"
        }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "control characters cannot occur in a claim path, got \(quoted(path))"
        }
        return nil
    }
}
