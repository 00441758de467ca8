/// What an upstream response's head says about its body and its connection (RFC 9112 §6.3,
/// §9.3): gathered field by field while the head is parsed, decided once it is complete.
///
/// The decision is strict where a lenient reading would let an upstream split the client's
/// connection (SPEC §3.2 "Upstream answers"):
/// - `Content-Length` must be all digits, and repeated values must agree, else the response
///   is refused (§6.3 (5): a proxy answers 502). Next to `Transfer-Encoding` it never frames
///   anything and is not forwarded (§6.3 (3)), and the connection is not reused.
/// - `Transfer-Encoding` must list exactly one coding, `chunked`: the gateway can remove the
///   chunked framing but no other coding (`gzip` as a transfer coding, or `chunked` not last,
///   which §6.3 (4) reads as close-delimited), and forwarding such a body without its coding
///   would hand the client bytes it cannot read. nginx refuses the same ("unknown
///   Transfer-Encoding"). In an HTTP/1.0 response it is faulty framing (§6.1). Each -> 502.
/// - A HEAD, 1xx, 204 or 304 answer has no body; one that announced a body anyway
///   (`Content-Length` above 0, or a transfer coding) does not leave its connection reusable,
///   so that body bytes an upstream writes after it anyway never reach another request.
struct UpstreamResponseFraming {
    /// How the body is delimited.
    enum Body: Equatable {
        case none
        case length(UInt64)
        case chunked
        case untilClose
    }

    /// The decision for one response head.
    struct Decision: Equatable {
        var body: Body
        /// The connection can carry another request after this response.
        var keepAlive: Bool
        /// The upstream's `Content-Length` may go to the client as it is.
        var forwardsContentLength: Bool
    }

    private var contentLength: UInt64?
    private var transferEncoding = false
    /// Transfer codings listed over every `Transfer-Encoding` line.
    private var codings = 0
    private var onlyChunked = true
    private var connectionClose = false
    private var connectionKeepAlive = false

    /// Notes one field (name lowercase-compared by the caller's `kind`); false when the field
    /// alone makes the response invalid.
    mutating func note(_ kind: FieldKind, _ value: UnsafeRawBufferPointer) -> Bool {
        switch kind {
        case .contentLength:
            guard let n = Self.decimal(value) else { return false }
            if let seen = contentLength, seen != n { return false }
            contentLength = n
        case .transferEncoding:
            transferEncoding = true
            Self.forEachListElement(value) { a, b in
                codings += 1
                if !Self.matches(value, a, b, "chunked") { onlyChunked = false }
            }
        case .connection:
            Self.forEachListElement(value) { a, b in
                if Self.matches(value, a, b, "close") { connectionClose = true }
                if Self.matches(value, a, b, "keep-alive") { connectionKeepAlive = true }
            }
        }
        return true
    }

    /// The header fields that bear on framing.
    enum FieldKind { case contentLength, transferEncoding, connection }

    /// The framing of a response with `status`, HTTP/1.`minor`, to a HEAD request or not; nil
    /// when the response must be refused.
    func decide(status: Int, minor: Int, isHeadRequest: Bool) -> Decision? {
        if transferEncoding && (minor == 0 || codings != 1 || !onlyChunked) { return nil }
        var keepAlive = minor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        if isHeadRequest || status < 200 || status == 204 || status == 304 {
            if transferEncoding || (contentLength ?? 0) > 0 { keepAlive = false }
            let informational = contentLength != nil && !transferEncoding && status >= 200 && status != 204
            return Decision(body: .none, keepAlive: keepAlive, forwardsContentLength: informational)
        }
        if transferEncoding {
            // Content-Length beside it is dropped; the upstream that sent both is not trusted
            // with another request on this connection.
            if contentLength != nil { keepAlive = false }
            return Decision(body: .chunked, keepAlive: keepAlive, forwardsContentLength: false)
        }
        if let contentLength {
            return Decision(body: .length(contentLength), keepAlive: keepAlive, forwardsContentLength: true)
        }
        return Decision(body: .untilClose, keepAlive: false, forwardsContentLength: false)
    }

    // MARK: bytes

    /// A `Content-Length` value: 1 to 18 digits, nothing else.
    static func decimal(_ value: UnsafeRawBufferPointer) -> UInt64? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var n: UInt64 = 0
        for c in value {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + UInt64(c - UInt8(ascii: "0"))
        }
        return n
    }

    /// Calls `body(start, end)` for each non-empty element of a comma-separated list, trimmed
    /// of spaces and tabs (RFC 9110 §5.6.1: empty elements are ignored).
    private static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (Int, Int) -> Void) {
        var start = 0
        while start < value.count {
            var end = start
            while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
            var a = start, b = end
            while a < b && (value[a] == UInt8(ascii: " ") || value[a] == UInt8(ascii: "\t")) { a += 1 }
            while b > a && (value[b - 1] == UInt8(ascii: " ") || value[b - 1] == UInt8(ascii: "\t")) { b -= 1 }
            if b > a { body(a, b) }
            start = end + 1
        }
    }

    /// `value[a..<b]` equals the lowercase `word`, ignoring ASCII case.
    private static func matches(_ value: UnsafeRawBufferPointer, _ a: Int, _ b: Int, _ word: StaticString) -> Bool {
        guard b - a == word.utf8CodeUnitCount else { return false }
        for k in 0..<(b - a) where (value[a + k] | (value[a + k] >= 65 && value[a + k] <= 90 ? 0x20 : 0)) != word.utf8Start[k] {
            return false
        }
        return true
    }
}
