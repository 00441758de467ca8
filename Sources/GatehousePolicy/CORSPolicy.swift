/// Why a `cors` block was refused. `message` names the key and the bad value.
public struct CORSConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key under `cors` that holds the bad value: `allow_origins`, `allow_methods`,
    /// `allow_headers`, `expose_headers` or `max_age`.
    public var key: String
    /// The position in that key's list when one entry is at fault, so the config loader can
    /// point at its line.
    public var index: Int?
    public var message: String
    public var description: String { message }

    public init(key: String, index: Int? = nil, message: String) {
        self.key = key; self.index = index; self.message = message
    }
}

/// The CORS policy of the gateway or of one route (SPEC §2 `cors`, §6): the server side of the
/// [Fetch standard's CORS protocol](https://fetch.spec.whatwg.org/#http-cors-protocol).
///
/// Everything is checked and every header value computed once, at init; the per-request calls
/// parse the request headers in place and allocate only the returned header list.
///
/// Decisions where the standard leaves room, strict and explicit throughout:
/// - Methods compare case-sensitively ([RFC 9110 §9.1](https://www.rfc-editor.org/rfc/rfc9110#section-9.1));
///   the configured names are upper-cased, so `get` in the config means `GET`. A preflight is
///   allowed only for a listed method — the CORS-safelisted methods `GET`, `HEAD` and `POST`
///   included: a browser preflights them only when it sends non-safelisted headers, and those
///   requests get exactly what `allow_methods` says.
/// - Every name in `Access-Control-Request-Headers` must be in `allow_headers` (compared
///   case-insensitively); CORS-safelisted request headers get no implicit pass. A browser
///   names a safelisted header there only when its value is not safelisted
///   (`Content-Type: application/json`), and that is the case worth an explicit entry.
///   An empty or all-whitespace `Access-Control-Request-Headers` asks for nothing and passes.
/// - `Access-Control-Allow-Headers` on an allowed preflight is the configured list (one string
///   built at init, and the browser's preflight cache learns every allowed name at once);
///   with `allow_headers: ["*"]` — any header — it echoes the requested names instead, since
///   the literal `*` would not cover `Authorization` nor work with credentials
///   ([Fetch, HTTP responses](https://fetch.spec.whatwg.org/#http-responses)). It is omitted when empty.
/// - `*` is accepted in `allow_origins` and `allow_headers` only as the sole entry, never in
///   `allow_methods` or `expose_headers`: list those names.
public struct CORSPolicy: Sendable, Equatable {
    /// The `allow_origins` entries, in order.
    public let origins: [OriginPattern]
    /// Upper-cased, duplicates dropped, in order.
    public let allowMethods: [String]
    /// As configured, case-insensitive duplicates dropped; `["*"]` means any header.
    public let allowHeaders: [String]
    public let exposeHeaders: [String]
    public let allowCredentials: Bool
    public let maxAgeSeconds: Int

    private let allowsAnyOrigin: Bool
    private let allowsNullOrigin: Bool
    private let allowsAnyHeader: Bool
    /// `allowHeaders` lowercased, as bytes, for matching without allocating.
    private let allowedHeaderNames: [[UInt8]]
    private let methodsValue: String
    private let headersValue: String
    private let exposeValue: String
    private let maxAgeValue: String

    /// Validates a `cors` block and precomputes its header values; throws the first problem
    /// (``problems(allowOrigins:allowMethods:allowHeaders:exposeHeaders:allowCredentials:maxAgeSeconds:)``
    /// lists them all).
    public init(allowOrigins: [String], allowMethods: [String], allowHeaders: [String], exposeHeaders: [String],
                allowCredentials: Bool, maxAgeSeconds: Int) throws(CORSConfigError) {
        var problems: [CORSConfigError] = []
        self.init(allowOrigins: allowOrigins, allowMethods: allowMethods, allowHeaders: allowHeaders,
                  exposeHeaders: exposeHeaders, allowCredentials: allowCredentials, maxAgeSeconds: maxAgeSeconds,
                  problems: &problems)
        if let first = problems.first { throw first }
    }

    /// Every problem of a `cors` block, in key order; empty when the init would succeed.
    public static func problems(allowOrigins: [String], allowMethods: [String], allowHeaders: [String],
                                exposeHeaders: [String], allowCredentials: Bool, maxAgeSeconds: Int) -> [CORSConfigError] {
        var problems: [CORSConfigError] = []
        _ = CORSPolicy(allowOrigins: allowOrigins, allowMethods: allowMethods, allowHeaders: allowHeaders,
                       exposeHeaders: exposeHeaders, allowCredentials: allowCredentials, maxAgeSeconds: maxAgeSeconds,
                       problems: &problems)
        return problems
    }

    private init(allowOrigins: [String], allowMethods: [String], allowHeaders: [String], exposeHeaders: [String],
                 allowCredentials: Bool, maxAgeSeconds: Int, problems: inout [CORSConfigError]) {
        var origins: [OriginPattern] = []
        if allowOrigins.isEmpty {
            problems.append(CORSConfigError(key: "allow_origins",
                message: "allow_origins is empty; list at least one origin, or write `cors: false` to turn CORS off"))
        }
        for (index, text) in allowOrigins.enumerated() {
            do throws(CORSConfigError) {
                let pattern = try OriginPattern(text)
                if pattern.isAny && allowOrigins.count > 1 {
                    problems.append(CORSConfigError(key: "allow_origins", index: index,
                        message: "allow_origins: \"*\" must be the only entry (it already allows every origin)"))
                }
                if !origins.contains(pattern) { origins.append(pattern) }
            } catch {
                problems.append(CORSConfigError(key: error.key, index: index, message: error.message))
            }
        }
        allowsAnyOrigin = allowOrigins == ["*"]
        if allowsAnyOrigin && allowCredentials {
            problems.append(CORSConfigError(key: "allow_origins", index: 0,
                message: "allow_origins [\"*\"] with allow_credentials is not allowed"))
        }
        allowsNullOrigin = origins.contains { $0.shape == .null }
        self.origins = origins

        var methods: [String] = []
        for (index, name) in allowMethods.enumerated() {
            if name == "*" {
                problems.append(CORSConfigError(key: "allow_methods", index: index,
                    message: "allow_methods: \"*\" is not supported; list the methods, as in [GET, POST]"))
            } else if !TokenSyntax.isToken(name) {
                problems.append(CORSConfigError(key: "allow_methods", index: index,
                    message: "allow_methods: \"\(name)\" is not a method name"))
            } else if !methods.contains(name.uppercased()) {
                methods.append(name.uppercased())
            }
        }
        self.allowMethods = methods

        allowsAnyHeader = allowHeaders == ["*"]
        self.allowHeaders = Self.headerNames(allowHeaders, key: "allow_headers", starAlone: true, problems: &problems)
        allowedHeaderNames = allowsAnyHeader ? [] : self.allowHeaders.map { $0.utf8.map(ASCII.lowercased) }
        self.exposeHeaders = Self.headerNames(exposeHeaders, key: "expose_headers", starAlone: false, problems: &problems)

        if maxAgeSeconds < 0 {
            problems.append(CORSConfigError(key: "max_age", message: "max_age: \(maxAgeSeconds) seconds is negative"))
        }
        self.allowCredentials = allowCredentials
        self.maxAgeSeconds = maxAgeSeconds
        methodsValue = methods.joined(separator: ", ")
        headersValue = allowsAnyHeader ? "" : self.allowHeaders.joined(separator: ", ")
        exposeValue = self.exposeHeaders.joined(separator: ", ")
        maxAgeValue = String(max(0, maxAgeSeconds))
    }

    private static func headerNames(_ names: [String], key: String, starAlone: Bool,
                                    problems: inout [CORSConfigError]) -> [String] {
        var kept: [String] = []
        for (index, name) in names.enumerated() {
            if name == "*" {
                if !starAlone || names.count > 1 {
                    let hint = starAlone ? "must be the only entry" : "is not supported; list the header names"
                    problems.append(CORSConfigError(key: key, index: index, message: "\(key): \"*\" \(hint)"))
                }
                if starAlone { kept = ["*"] }
            } else if !TokenSyntax.isToken(name) {
                problems.append(CORSConfigError(key: key, index: index, message: "\(key): \"\(name)\" is not a header name"))
            } else if !kept.contains(where: { $0.lowercased() == name.lowercased() }) {
                kept.append(name)
            }
        }
        return kept
    }

    /// Whether the `Origin` header value `origin` is allowed. `null` only when listed.
    public func allows(origin: String) -> Bool {
        if origin == "null" { return allowsNullOrigin }
        var copy = origin
        return copy.withUTF8 { bytes in
            guard case .success(let parts) = OriginSyntax.parse(bytes) else { return false }
            // Through the buffer, each pattern is borrowed, not copied (no retain/release).
            return origins.withUnsafeBufferPointer { patterns in
                for index in patterns.indices where patterns[index].matches(parts) { return true }
                return false
            }
        }
    }

    /// The answer to a CORS preflight
    /// ([Fetch, CORS-preflight fetch](https://fetch.spec.whatwg.org/#cors-preflight-fetch)).
    public enum Preflight: Sendable, Equatable {
        /// 204 with these headers.
        case allow([(String, String)])
        /// 403 `cors_rejected` without any CORS header (SPEC §3.1).
        case reject

        public static func == (left: Preflight, right: Preflight) -> Bool {
            switch (left, right) {
            case (.reject, .reject):
                return true
            case (.allow(let a), .allow(let b)):
                return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default:
                return false
            }
        }
    }

    /// Decides a preflight. `origin` is the `Origin` header, `method` the
    /// `Access-Control-Request-Method` header, `requestHeaders` the
    /// `Access-Control-Request-Headers` header (nil when absent).
    public func preflight(origin: String, method: String, requestHeaders: String?) -> Preflight {
        guard allows(origin: origin), allowMethods.contains(method) else { return .reject }
        var echoed: Substring = ""
        if let requestHeaders {
            guard let requested = self.requested(requestHeaders) else { return .reject }
            echoed = requested
        }
        var headers: [(String, String)] = []
        headers.reserveCapacity(6)
        headers.append(("Access-Control-Allow-Origin", allowsAnyOrigin ? "*" : origin))
        if allowCredentials { headers.append(("Access-Control-Allow-Credentials", "true")) }
        headers.append(("Access-Control-Allow-Methods", methodsValue))
        if allowsAnyHeader {
            if !echoed.isEmpty { headers.append(("Access-Control-Allow-Headers", String(echoed))) }
        } else if !headersValue.isEmpty {
            headers.append(("Access-Control-Allow-Headers", headersValue))
        }
        headers.append(("Access-Control-Max-Age", maxAgeValue))
        headers.append(("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"))
        return .allow(headers)
    }

    /// Checks every comma-separated name in `value`; returns the value trimmed of surrounding
    /// whitespace (to echo) when all are allowed, nil otherwise. Empty list elements are
    /// skipped ([RFC 9110 §5.6.1](https://www.rfc-editor.org/rfc/rfc9110#section-5.6.1)).
    private func requested(_ value: String) -> Substring? {
        var copy = value
        let allowed: Bool = copy.withUTF8 { bytes in
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != ASCII.comma { end += 1 }
                var low = start, high = end
                while low < high, bytes[low] == ASCII.space || bytes[low] == ASCII.tab { low += 1 }
                while high > low, bytes[high - 1] == ASCII.space || bytes[high - 1] == ASCII.tab { high -= 1 }
                if low < high {
                    let name = bytes[low..<high]
                    guard name.allSatisfy(TokenSyntax.isTokenByte) else { return false }
                    if !allowsAnyHeader,
                       !allowedHeaderNames.contains(where: { OriginSyntax.equalIgnoringCase(name, lowered: $0) }) { return false }
                }
                start = end + 1
            }
            return true
        }
        guard allowed else { return nil }
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = value.firstIndex(where: { !isOWS($0) }), let last = value.lastIndex(where: { !isOWS($0) }) else {
            return ""
        }
        return value[first...last]
    }

    /// The CORS headers of a response that is not a preflight answer — the upstream's, or the
    /// gateway's own refusal (SPEC §3.1, §6). When `origin` is nil or not allowed, only
    /// ``varyHeaders``: the answer still depends on the origin, and a shared cache that stored
    /// it without `Vary: Origin` would serve it to an allowed origin too (or the reverse).
    public func responseHeaders(origin: String?) -> [(String, String)] {
        guard let origin, allows(origin: origin) else { return varyHeaders }
        var headers: [(String, String)] = []
        headers.reserveCapacity(4)
        headers.append(("Access-Control-Allow-Origin", allowsAnyOrigin ? "*" : origin))
        if allowCredentials { headers.append(("Access-Control-Allow-Credentials", "true")) }
        if !exposeValue.isEmpty { headers.append(("Access-Control-Expose-Headers", exposeValue)) }
        headers.append(("Vary", "Origin"))
        return headers
    }
}

extension CORSPolicy {
    /// `Vary: Origin` for every response on a route with this policy, whatever the origin —
    /// present, absent, refused (SPEC §6) — except under `allow_origins: ["*"]` without
    /// credentials, whose answer is the same for every origin. Empty then.
    public var varyHeaders: [(String, String)] {
        allowsAnyOrigin && !allowCredentials ? [] : CORSPolicy.varyOrigin
    }

    private static let varyOrigin = [("Vary", "Origin")]
}

/// The response headers of the CORS protocol
/// ([Fetch, HTTP responses](https://fetch.spec.whatwg.org/#http-responses)).
public enum CORSHeaders {
    /// Whether a lowercased response header name is one the gateway owns on a CORS route:
    /// every `access-control-*` name (`-allow-origin`, `-allow-credentials`, `-allow-methods`,
    /// `-allow-headers`, `-max-age`, `-expose-headers`, and `-allow-private-network` of Private
    /// Network Access). The upstream's copies are dropped and the policy's put in their place.
    /// `Vary` is not among them: the upstream's `Vary` is kept and `Origin` added to it.
    public static func isCORSResponseHeader(_ lowercasedName: String) -> Bool {
        lowercasedName.utf8.starts(with: prefix)
    }

    private static let prefix = "access-control-".utf8
}

/// RFC 9110 §5.6.2 tokens (method and header names).
enum TokenSyntax {
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// tchar: `!#$%&'*+-.^_`|~`, digits and letters.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
