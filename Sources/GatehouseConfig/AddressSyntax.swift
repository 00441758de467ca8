#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an address, URL or origin was refused; the message has no key path (the caller adds it).
struct SyntaxError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Parsing of the config's network addresses: listen addresses, upstream target URLs,
/// origins and route hosts. Hosts come back lowercased, IPv6 addresses without brackets
/// (except in route hosts, which are compared with the `Host` header as written there).
enum AddressSyntax {
    /// `host:port` or `[v6]:port`; the port 1–65535.
    static func listenAddress(_ text: String) -> Result<ListenAddress, SyntaxError> {
        let hint = "expected host:port or [ipv6]:port, got \(quoted(text))"
        if !text.hasPrefix("["), text.filter({ $0 == ":" }).count > 1 { return .failure(unbracketed(text)) }
        guard let (hostPart, portPart) = splitHostPort(text) else { return .failure(SyntaxError(hint)) }
        guard let portText = portPart else { return .failure(SyntaxError(hint)) }
        return host(hostPart).flatMap { host in
            port(portText).map { ListenAddress(host: host, port: $0) }
        }
    }

    /// `http://host[:port]` or `https://host[:port]` with no path, query or user info; the port
    /// defaults to 80 or 443.
    static func upstreamTarget(_ text: String) -> Result<UpstreamTarget, SyntaxError> {
        let lower = text.lowercased()
        let tls = lower.hasPrefix("https://")
        guard tls || lower.hasPrefix("http://") else {
            return .failure(SyntaxError("expected a URL like http://host:port, got \(quoted(text))"))
        }
        let rest = String(text.dropFirst(tls ? "https://".count : "http://".count))
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        if authority.count < rest.count {
            return .failure(SyntaxError(
                "a target is scheme, host and port only, got \(quoted(text)); the request's path is forwarded as it is"))
        }
        if authority.contains("@") { return .failure(SyntaxError("a target has no user info, got \(quoted(text))")) }
        if !authority.hasPrefix("["), authority.filter({ $0 == ":" }).count > 1 { return .failure(unbracketed(text)) }
        guard let (hostPart, portPart) = splitHostPort(authority) else {
            return .failure(SyntaxError("expected a URL like http://host:port, got \(quoted(text))"))
        }
        return host(hostPart).flatMap { host in
            (portPart.map(port) ?? .success(tls ? 443 : 80)).map { UpstreamTarget(host: host, port: $0, tls: tls) }
        }
    }

    /// An origin (RFC 6454): `http` or `https`, a host, an optional port and nothing else.
    /// Normalized as browsers serialize it in `Origin`: lowercase, no default port.
    static func origin(_ text: String) -> Result<String, SyntaxError> {
        let hint = "expected an origin like https://api.example.com (scheme, host, optional port; no path), got \(quoted(text))"
        guard let schemeEnd = text.range(of: "://") else { return .failure(SyntaxError(hint)) }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let authority = String(text[schemeEnd.upperBound...])
        guard scheme == "http" || scheme == "https", !authority.isEmpty,
              !authority.contains(where: { "/?#@".contains($0) }),
              let (hostPart, portPart) = splitHostPort(authority) else { return .failure(SyntaxError(hint)) }
        return host(hostPart).flatMap { host in
            (portPart.map(port) ?? .success(scheme == "https" ? 443 : 80)).map { port in
                let h = host.contains(":") ? "[\(host)]" : host
                let isDefault = (scheme == "https" && port == 443) || (scheme == "http" && port == 80)
                return isDefault ? "\(scheme)://\(h)" : "\(scheme)://\(h):\(port)"
            }
        }
    }

    /// A URL the gateway fetches (`jwks_url`): `http://` or `https://`, a host, an optional
    /// port, path and query; no user info (it would be logged), no fragment, no spaces.
    /// Returned as written.
    static func fetchURL(_ text: String) -> Result<String, SyntaxError> {
        let hint = "expected an http:// or https:// URL with a host, got \(quoted(text))"
        let lower = text.lowercased()
        guard let scheme = ["https://", "http://"].first(where: lower.hasPrefix) else { return .failure(SyntaxError(hint)) }
        if let problem = urlCharacterProblem(text) { return .failure(problem) }
        return urlHost(String(text.dropFirst(scheme.count)), hint: hint).map { _ in text }
    }

    /// A route's `login_redirect`: a path on this gateway's origin (`/login.html`, not `//…`,
    /// which browsers read as another host) or an absolute `https://` URL. Backslashes are
    /// refused everywhere: browsers read `/\host` as `//host`.
    static func loginRedirect(_ text: String) -> Result<String, SyntaxError> {
        if let problem = urlCharacterProblem(text) { return .failure(problem) }
        if text.hasPrefix("//") {
            return .failure(SyntaxError(
                "\(quoted(text)) starts with // and browsers would read it as another host; "
                    + "write a path starting with one / or a full https:// URL"))
        }
        if text.hasPrefix("/") { return .success(text) }
        let hint = "expected a path starting with / or an https:// URL, got \(quoted(text))"
        guard text.lowercased().hasPrefix("https://") else { return .failure(SyntaxError(hint)) }
        return urlHost(String(text.dropFirst("https://".count)), hint: hint).map { _ in text }
    }

    /// Checks the authority at the start of `rest` (what follows `scheme://`): a host, an
    /// optional port, no user info.
    private static func urlHost(_ rest: String, hint: String) -> Result<String, SyntaxError> {
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        if authority.contains("@") { return .failure(SyntaxError("a URL here has no user info; \(hint)")) }
        if !authority.hasPrefix("["), authority.filter({ $0 == ":" }).count > 1 {
            return .failure(SyntaxError("an IPv6 address needs brackets, like https://[::1]:8443/, got \(quoted(authority))"))
        }
        guard !authority.isEmpty, let (hostPart, portPart) = splitHostPort(authority) else {
            return .failure(SyntaxError(hint))
        }
        return host(hostPart).flatMap { host in (portPart.map(port) ?? .success(0)).map { _ in host } }
    }

    /// Spaces, control characters, backslashes and fragments have no place in these URLs.
    private static func urlCharacterProblem(_ text: String) -> SyntaxError? {
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return SyntaxError("spaces and control characters must be percent-encoded, got \(quoted(text))")
        }
        if text.contains("\\") { return SyntaxError("backslashes are not allowed, got \(quoted(text))") }
        if text.contains("#") { return SyntaxError("a fragment (#...) is not allowed, got \(quoted(text))") }
        return nil
    }

    /// A route's `match.host`: a host name or address without port, lowercased.
    static func routeHost(_ text: String) -> Result<String, SyntaxError> {
        if text.hasPrefix("[") && text.hasSuffix("]") {
            return host(text).map { "[\($0)]" }
        }
        if text.contains(":") {
            return .failure(SyntaxError("expected a host name without port (the port is ignored when matching), got \(quoted(text))"))
        }
        return host(text)
    }

    // MARK: - Pieces

    /// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; nil when brackets do not close.
    static func splitHostPort(_ text: String) -> (host: String, port: String?)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[...close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":") else { return nil }
            return (host, String(rest.dropFirst()))
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    static func port(_ text: String) -> Result<UInt16, SyntaxError> {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(text), (1...65535).contains(value) else {
            return .failure(SyntaxError("port must be a number from 1 to 65535, got \(quoted(text))"))
        }
        return .success(UInt16(value))
    }

    /// `[v6]`, an IPv4 address or a DNS name (letters, digits, `-`, `_` in dot-separated labels).
    static func host(_ text: String) -> Result<String, SyntaxError> {
        if text.hasPrefix("[") {
            let inner = String(text.dropFirst().dropLast())
            guard text.hasSuffix("]"), isIPv6(inner) else {
                return .failure(SyntaxError("invalid IPv6 address \(quoted(text))"))
            }
            return .success(inner.lowercased())
        }
        if text.contains(":") { return .failure(unbracketed(text)) }
        if text.isEmpty { return .failure(SyntaxError("the host is missing")) }
        if text.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) {
            return isIPv4(text) ? .success(text) : .failure(SyntaxError("invalid IPv4 address \(quoted(text))"))
        }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        let valid = text.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
        }
        return valid ? .success(text.lowercased()) : .failure(SyntaxError("invalid host name \(quoted(text))"))
    }

    private static func unbracketed(_ text: String) -> SyntaxError {
        SyntaxError("an IPv6 address needs brackets, like [::1]:8080, got \(quoted(text))")
    }

    private static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    private static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// True for the any-address hosts, which overlap every other host on the same port.
    static func isWildcard(_ host: String) -> Bool { host == "0.0.0.0" || host == "::" }
}
