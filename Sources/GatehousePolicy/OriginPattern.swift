/// One entry of `cors.allow_origins` (SPEC §2, §6), matched against the `Origin` request header
/// ([Fetch, `Origin` header](https://fetch.spec.whatwg.org/#origin-header),
/// [RFC 6454 §6.1](https://www.rfc-editor.org/rfc/rfc6454#section-6.1)).
///
/// - `https://app.example.com` — one origin. Scheme and host compare case-insensitively, and the
///   scheme's default port is dropped on both sides (`https://a.com:443` is `https://a.com`);
///   any other port must be equal.
/// - `https://*.example.com` — any origin of that scheme and port whose host is one or more
///   labels followed by `.example.com`: `a.example.com` and `a.b.example.com`, never
///   `example.com`, `evilexample.com` or `a.example.com.evil.net`. The `*` must be the whole
///   leftmost label.
/// - `null` — the opaque origin (sandboxed frames, `file:` pages, some redirects). Matches only
///   when listed, never through `*` or a wildcard host.
/// - `*` — any serialized origin (not `null`); ``CORSPolicy`` allows it only as the sole entry
///   and without credentials.
///
/// Refused: a path (even `/`), query, fragment or user info; an empty host; a port outside
/// 1–65535; a `*` anywhere but the leftmost label; empty host labels (`a..com`, `a.com.`).
/// IPv6 hosts are written in brackets and kept in their RFC 5952 form, as browsers send them.
///
/// Matching parses the header's UTF-8 bytes in place and allocates nothing.
public struct OriginPattern: Sendable, Hashable, CustomStringConvertible {
    enum Shape: Sendable, Hashable {
        case any, null
        /// `scheme`, `host`, `port` must equal.
        case exact
        /// `scheme` and `port` must equal; `host` is a suffix starting with `.` (`.example.com`),
        /// preceded by one or more labels.
        case subdomains
    }

    // Plain stored properties rather than enum payloads: reading them on the match path
    // costs no retain/release.
    let shape: Shape
    /// Lowercased; empty for `*` and `null`.
    let scheme: [UInt8]
    /// Lowercased host, or for `.subdomains` the suffix after the `*`.
    let host: [UInt8]
    /// Nil when absent or the scheme's default.
    let port: Int?
    /// The canonical text: lowercased scheme and host, default port dropped.
    public let description: String

    /// Whether this is the `*` pattern.
    public var isAny: Bool { shape == .any }

    /// Parses one `allow_origins` entry; the error's `message` names the entry.
    public init(_ text: String) throws(CORSConfigError) {
        if text == "*" || text == "null" {
            shape = text == "*" ? .any : .null
            scheme = []; host = []; port = nil; description = text
            return
        }
        func refuse(_ why: String) -> CORSConfigError {
            CORSConfigError(key: "allow_origins", message: "allow_origins: \"\(text)\" \(why)")
        }
        var copy = text
        let parsed: Result<(scheme: [UInt8], host: [UInt8], port: Int?), OriginSyntax.Problem> = copy.withUTF8 { bytes in
            OriginSyntax.parse(bytes).map { parts in
                (parts.scheme.map(ASCII.lowercased), parts.host.map(ASCII.lowercased), parts.port)
            }
        }
        let scheme: [UInt8], port: Int?
        var host: [UInt8]
        switch parsed {
        case .success(let parts): (scheme, host, port) = parts
        case .failure(let problem): throw refuse(problem.explanation)
        }
        if host.first == ASCII.openBracket {
            guard let address = IPAddress(String(decoding: host.dropFirst().dropLast(), as: UTF8.self)), !address.isIPv4 else {
                throw refuse("has a bracketed host that is not an IPv6 address")
            }
            host = Array("[\(address)]".utf8)
        } else {
            if host.split(separator: ASCII.dot, omittingEmptySubsequences: false).contains(where: \.isEmpty) {
                throw refuse("has an empty host label (a leading, doubled or trailing \".\")")
            }
            if let star = host.firstIndex(of: ASCII.star),
               star != 0 || host.count < 3 || host[1] != ASCII.dot || host[1...].contains(ASCII.star) {
                throw refuse("has a \"*\" that is not the whole leftmost host label, as in \"https://*.example.com\"")
            }
        }
        let portText = port.map { ":\($0)" } ?? ""
        description = "\(String(decoding: scheme, as: UTF8.self))://\(String(decoding: host, as: UTF8.self))\(portText)"
        self.scheme = scheme
        self.port = port
        if host.first == ASCII.star {
            shape = .subdomains
            self.host = Array(host.dropFirst())
        } else {
            shape = .exact
            self.host = host
        }
    }

    /// Whether the `Origin` header value `origin` matches. A value that is not a serialized
    /// origin (nor `null`) matches nothing.
    public func matches(_ origin: String) -> Bool {
        if shape == .null { return origin == "null" }
        var copy = origin
        return copy.withUTF8 { bytes in
            guard case .success(let parsed) = OriginSyntax.parse(bytes) else { return false }
            return matches(parsed)
        }
    }

    func matches(_ origin: OriginSyntax.Parts) -> Bool {
        switch shape {
        case .any:
            return true
        case .null:
            return false
        case .exact:
            return port == origin.port && OriginSyntax.equalIgnoringCase(origin.scheme, lowered: scheme)
                && OriginSyntax.equalIgnoringCase(origin.host, lowered: host)
        case .subdomains:
            guard port == origin.port, origin.host.count > host.count,
                  OriginSyntax.equalIgnoringCase(origin.scheme, lowered: scheme) else { return false }
            let split = origin.host.endIndex - host.count
            return OriginSyntax.equalIgnoringCase(origin.host[split...], lowered: host)
                && OriginSyntax.isLabels(origin.host[..<split])
        }
    }
}

/// The syntax of a serialized origin, `scheme "://" host [ ":" port ]`, read from UTF-8 bytes
/// without allocating. Shared by the patterns (parsed once) and the `Origin` header (per request).
enum OriginSyntax {
    /// Slices of the parsed bytes; `port` is nil when absent or the scheme's default.
    struct Parts {
        var scheme: Slice<UnsafeBufferPointer<UInt8>>
        var host: Slice<UnsafeBufferPointer<UInt8>>
        var port: Int?
    }

    enum Problem: Error {
        case noScheme, badScheme, emptyHost, badHost, hasPath, hasUserInfo, badPort

        var explanation: String {
            switch self {
            case .noScheme: return "is not an origin: write scheme://host[:port], as in \"https://app.example.com\""
            case .badScheme: return "has an invalid scheme"
            case .emptyHost: return "has an empty host"
            case .badHost: return "has a character that cannot be in a host name"
            case .hasPath: return "has a path, query or fragment; an origin is scheme://host[:port] only"
            case .hasUserInfo: return "has user info (\"@\"); an origin is scheme://host[:port] only"
            case .badPort: return "has a port that is not a number from 1 to 65535"
            }
        }
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<Parts, Problem> {
        var cursor = 0
        while cursor < bytes.count, bytes[cursor] != ASCII.colon { cursor += 1 }
        guard cursor + 2 < bytes.count, bytes[cursor + 1] == ASCII.slash, bytes[cursor + 2] == ASCII.slash else {
            return .failure(.noScheme)
        }
        let scheme = bytes[0..<cursor]
        guard let first = scheme.first, isAlpha(first),
              scheme.allSatisfy({ isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == ASCII.dot })
        else { return .failure(.badScheme) }
        let authority = bytes[(cursor + 3)...]
        if authority.contains(where: { $0 == ASCII.slash || $0 == ASCII.question || $0 == ASCII.hash || $0 == ASCII.backslash }) {
            return .failure(.hasPath)
        }
        if authority.contains(UInt8(ascii: "@")) { return .failure(.hasUserInfo) }
        var hostEnd = authority.endIndex
        if authority.first == ASCII.openBracket {
            guard let close = authority.firstIndex(of: ASCII.closeBracket) else { return .failure(.badHost) }
            hostEnd = close + 1
            guard authority[(authority.startIndex + 1)..<close].allSatisfy({ ASCII.hexValue($0) != nil || $0 == ASCII.colon || $0 == ASCII.dot })
            else { return .failure(.badHost) }
        } else {
            hostEnd = authority.firstIndex(of: ASCII.colon) ?? authority.endIndex
            guard authority[..<hostEnd].allSatisfy({ isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") || $0 == ASCII.dot || $0 == UInt8(ascii: "_") || $0 == ASCII.star })
            else { return .failure(.badHost) }
        }
        let host = bytes[authority.startIndex..<hostEnd]
        guard !host.isEmpty else { return .failure(.emptyHost) }
        var port: Int? = nil
        if hostEnd < authority.endIndex {
            guard bytes[hostEnd] == ASCII.colon else { return .failure(.badHost) }
            let digits = bytes[(hostEnd + 1)...]
            guard (1...5).contains(digits.count), digits.allSatisfy(isDigit) else { return .failure(.badPort) }
            let value = digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
            guard (1...65535).contains(value) else { return .failure(.badPort) }
            port = value == defaultPort(scheme) ? nil : value
        }
        return .success(Parts(scheme: scheme, host: host, port: port))
    }

    /// 80 for http and ws, 443 for https and wss; nil for schemes without one.
    static func defaultPort(_ scheme: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        var lowered: UInt64 = 0  // up to 5 letters, packed; no lookup table on the match path
        guard scheme.count <= 5 else { return nil }
        for byte in scheme { lowered = lowered << 8 | UInt64(ASCII.lowercased(byte)) }
        switch lowered {
        case packed("http"), packed("ws"): return 80
        case packed("https"), packed("wss"): return 443
        default: return nil
        }
    }

    private static func packed(_ text: StaticString) -> UInt64 {
        var value: UInt64 = 0
        text.withUTF8Buffer { for byte in $0 { value = value << 8 | UInt64(byte) } }
        return value
    }

    /// ASCII case-insensitive equality with already-lowercased bytes. Index loops, not
    /// iterators, so that nothing is retained.
    @inline(__always)
    static func equalIgnoringCase(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, lowered: [UInt8]) -> Bool {
        guard bytes.count == lowered.count else { return false }
        var index = bytes.startIndex
        for position in 0..<lowered.count {
            if ASCII.lowercased(bytes[index]) != lowered[position] { return false }
            index += 1
        }
        return true
    }

    /// Whether `bytes` is one or more non-empty DNS labels (letters, digits, `-`, `_`) joined by `.`.
    static func isLabels(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var labelLength = 0
        for byte in bytes {
            if byte == ASCII.dot {
                if labelLength == 0 { return false }
                labelLength = 0
            } else if isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") {
                labelLength += 1
            } else {
                return false
            }
        }
        return labelLength > 0
    }

    @inline(__always) static func isAlpha(_ byte: UInt8) -> Bool { ASCII.lowercased(byte) >= UInt8(ascii: "a") && ASCII.lowercased(byte) <= UInt8(ascii: "z") }
    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
