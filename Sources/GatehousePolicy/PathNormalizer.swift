/// Path normalization and the path policy (SPEC §4.1).
///
/// Runs once per request, so it works on the target's UTF-8 bytes, never on `Character`s,
/// and allocates nothing beyond the strings it returns. A path that needs no work (no `%`, no
/// `.` or `..` segment, no `//`) is returned as it came.
///
/// The normalization follows [RFC 3986 §6.2.2](https://www.rfc-editor.org/rfc/rfc3986#section-6.2.2),
/// in this order:
/// 1. percent-encoded unreserved characters are decoded (`%2e` → `.`, `%41` → `A`);
/// 2. the remaining escapes are upper-cased (`%3a` → `%3A`);
/// 3. `.` and `..` segments are resolved as
///    [RFC 3986 §5.2.4](https://www.rfc-editor.org/rfc/rfc3986#section-5.2.4) `remove_dot_segments`
///    does, except that a `..` with nothing left to remove is refused instead of clamped;
/// 4. repeated slashes are merged (`//a///b` → `/a/b`).
///
/// A trailing slash is kept (`/a/` stays `/a/`, `/a/.` and `/a/b/..` become `/a/`).
///
/// Refused in both policies (nil, answered with 400 `path_rejected`):
/// - a target that is neither origin-form (`/…`) nor `http`/`https` absolute-form (so `*`, the
///   empty target and `?x` are refused);
/// - encoded slash and backslash (`%2F`, `%5C`) and a raw backslash;
/// - raw or encoded control characters (`%00`–`%1F`, `%7F`), raw spaces, raw non-ASCII bytes,
///   a raw `#` (a fragment never belongs in a request target);
/// - a malformed escape (`%`, `%4`, `%G1`);
/// - a `..` that climbs above `/` (`/../x`, `/a/../../x`, `/%2e%2e/x`).
///
/// `strict` also refuses `;` anywhere in the path, `%25` (encoded percent, double encoding), and
/// escaped bytes of 0x80 and above that do not form valid UTF-8 (SPEC §3.2): overlong forms
/// (`%C0%AE` for `.`, which a decoder that does not check would turn into a dot segment),
/// surrogates (`%ED%A0%80`), code points above U+10FFFF, and sequences cut short. `lenient`
/// accepts them, for upstreams that use another encoding (`%E9` for `é` in Latin-1).
/// `lenient` forwards both unchanged, but still refuses a `.` or `..` segment followed by `;`
/// parameters (`/a/..;/b`), which some servers (Tomcat, Jetty) resolve as `..`.
public enum PathNormalizer {
    /// `target` is the request target exactly as received: origin-form (`/a/b?x=1`) or
    /// absolute-form (`http://host:8080/x?y`,
    /// [RFC 9112 §3.2.2](https://www.rfc-editor.org/rfc/rfc9112#section-3.2.2)). Returns nil
    /// when the target must be refused with 400 (`path_rejected`).
    ///
    /// The query is everything after the first `?`, unchanged (`""` for a bare `?`); it is
    /// only refused when it holds raw control characters or spaces, which no valid request line
    /// carries and which must never reach an upstream's request line.
    public static func normalize(target: String, policy: PathPolicy) -> NormalizedTarget? {
        if let result = target.utf8.withContiguousStorageIfAvailable({
            normalize(bytes: $0, original: target, policy: policy)
        }) {
            return result
        }
        var contiguous = target
        contiguous.makeContiguousUTF8()
        return contiguous.utf8.withContiguousStorageIfAvailable {
            normalize(bytes: $0, original: contiguous, policy: policy)
        } ?? nil
    }

    private static func normalize(bytes: UnsafeBufferPointer<UInt8>, original: String,
                                  policy: PathPolicy) -> NormalizedTarget? {
        let count = bytes.count
        guard count > 0 else { return nil }

        var pathStart = 0
        var authority: String?
        if bytes[0] != ASCII.slash {
            guard let authorityStart = absoluteFormSchemeLength(bytes) else { return nil }
            var end = authorityStart
            while end < count, bytes[end] != ASCII.slash, bytes[end] != ASCII.question {
                guard isAuthorityByte(bytes[end]) else { return nil }
                end += 1
            }
            guard end > authorityStart else { return nil }
            authority = string(bytes, authorityStart..<end)
            pathStart = end
        }

        var pathEnd = pathStart
        while pathEnd < count, bytes[pathEnd] != ASCII.question { pathEnd += 1 }

        var query: String?
        if pathEnd < count {
            for index in (pathEnd + 1)..<count where ASCII.isControl(bytes[index]) || bytes[index] == ASCII.space {
                return nil
            }
            query = string(bytes, (pathEnd + 1)..<count)
        }

        let path: String
        if pathStart == pathEnd {
            path = "/"  // absolute-form with an empty path: `http://host` or `http://host?q`
        } else {
            guard let needsRewrite = scan(bytes, pathStart..<pathEnd, policy: policy) else { return nil }
            if !needsRewrite {
                path = (pathStart == 0 && pathEnd == count) ? original : string(bytes, pathStart..<pathEnd)
            } else {
                guard let rewritten = rewrite(bytes, pathStart..<pathEnd, policy: policy) else { return nil }
                path = rewritten
            }
        }
        return NormalizedTarget(path: path, query: query, authority: authority)
    }

    /// The length of a case-insensitive `http://` or `https://` prefix, or nil.
    private static func absoluteFormSchemeLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count >= 7, ASCII.lowercased(bytes[0]) == UInt8(ascii: "h"),
              ASCII.lowercased(bytes[1]) == UInt8(ascii: "t"), ASCII.lowercased(bytes[2]) == UInt8(ascii: "t"),
              ASCII.lowercased(bytes[3]) == UInt8(ascii: "p") else { return nil }
        var index = 4
        if ASCII.lowercased(bytes[index]) == UInt8(ascii: "s") { index += 1 }
        guard index + 3 <= bytes.count, bytes[index] == ASCII.colon,
              bytes[index + 1] == ASCII.slash, bytes[index + 2] == ASCII.slash else { return nil }
        return index + 3
    }

    /// Host names, IPv4 and bracketed IPv6 literals and a port. No userinfo (`@`, refused by
    /// [RFC 9110 §4.2.4](https://www.rfc-editor.org/rfc/rfc9110#section-4.2.4)), no escapes.
    private static func isAuthorityByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
             ASCII.colon, ASCII.openBracket, ASCII.closeBracket:
            return true
        default:
            return false
        }
    }

    /// Whether a raw path byte is accepted.
    @inline(__always)
    private static func acceptsRaw(_ byte: UInt8, policy: PathPolicy) -> Bool {
        if ASCII.isControl(byte) || byte >= 0x80 { return false }
        switch byte {
        case ASCII.space, ASCII.backslash, ASCII.hash: return false
        case ASCII.semicolon: return policy == .lenient
        default: return true
        }
    }

    /// Whether a percent-encoded byte value is accepted.
    @inline(__always)
    private static func acceptsEncoded(_ value: UInt8, policy: PathPolicy) -> Bool {
        if ASCII.isControl(value) { return false }
        switch value {
        case ASCII.slash, ASCII.backslash: return false
        case ASCII.percent: return policy == .lenient
        default: return true
        }
    }

    /// The decoded value of the escape starting at `index` (which holds `%`), or nil when it
    /// is malformed.
    @inline(__always)
    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int, end: Int) -> UInt8? {
        guard index + 2 < end, let high = ASCII.hexValue(bytes[index + 1]),
              let low = ASCII.hexValue(bytes[index + 2]) else { return nil }
        return high << 4 | low
    }

    /// What a segment is, looking at its bytes up to the first `;`: 1 for `.`, 2 for `..`,
    /// 0 otherwise; `hasParameters` when a `;` follows.
    @inline(__always)
    private static func dotSegment(_ segment: UnsafeBufferPointer<UInt8>) -> (dots: Int, hasParameters: Bool) {
        var length = 0
        while length < segment.count, segment[length] != ASCII.semicolon { length += 1 }
        let hasParameters = length < segment.count
        switch length {
        case 1 where segment[0] == ASCII.dot: return (1, hasParameters)
        case 2 where segment[0] == ASCII.dot && segment[1] == ASCII.dot: return (2, hasParameters)
        default: return (0, hasParameters)
        }
    }

    /// Checks every byte and escape of the path against the policy. Returns nil to refuse,
    /// false when the path is already normal, true when it needs `rewrite`. In `strict`, the
    /// escaped bytes of 0x80 and above must form whole UTF-8 sequences (``EscapedUTF8``).
    private static func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                             policy: PathPolicy) -> Bool? {
        var needsRewrite = false
        var utf8 = EscapedUTF8()
        let strict = policy == .strict
        var segmentStart = range.lowerBound + 1
        var index = range.lowerBound + 1
        while index <= range.upperBound {
            if index == range.upperBound || bytes[index] == ASCII.slash {
                if strict && !utf8.isComplete { return nil }  // a sequence cut by `/` or the end
                let segment = UnsafeBufferPointer(rebasing: bytes[segmentStart..<index])
                let (dots, hasParameters) = dotSegment(segment)
                if dots > 0 {
                    if hasParameters { return nil }
                    needsRewrite = true
                }
                if index < range.upperBound, index == segmentStart { needsRewrite = true }  // `//`
                segmentStart = index + 1
                index += 1
            } else if bytes[index] == ASCII.percent {
                guard let value = escape(bytes, at: index, end: range.upperBound),
                      acceptsEncoded(value, policy: policy) else { return nil }
                if strict && (value >= 0x80 || !utf8.isComplete) && !utf8.accept(value) { return nil }
                needsRewrite = true
                index += 3
            } else {
                guard acceptsRaw(bytes[index], policy: policy) else { return nil }
                if strict && !utf8.isComplete { return nil }
                index += 1
            }
        }
        return needsRewrite
    }

    /// Decodes, upper-cases, resolves dot segments and merges slashes, in one pass over the
    /// input into the output string's own buffer (the output is never longer than the input),
    /// then one compaction pass over the output for the slashes. Expects a path that `scan`
    /// accepted; returns nil when a `..` climbs above the root.
    private static func rewrite(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                                policy: PathPolicy) -> String? {
        var refused = false
        let result = String(unsafeUninitializedCapacity: range.count) { out in
            var length = 0
            var index = range.lowerBound
            // Invariant: bytes[index] == "/". `out[0..<length]` holds whole segments, each
            // written as "/" + its bytes, empty segments included (RFC 3986 keeps them while
            // resolving dot segments; they are merged afterwards).
            while index < range.upperBound {
                index += 1
                let segmentStart = length
                out[length] = ASCII.slash
                length += 1
                while index < range.upperBound, bytes[index] != ASCII.slash {
                    let byte = bytes[index]
                    if byte == ASCII.percent {
                        let high = ASCII.hexValue(bytes[index + 1])!, low = ASCII.hexValue(bytes[index + 2])!
                        let value = high << 4 | low
                        if ASCII.isUnreserved(value) {
                            out[length] = value
                            length += 1
                        } else {
                            out[length] = ASCII.percent
                            out[length + 1] = ASCII.upperHexDigit(high)
                            out[length + 2] = ASCII.upperHexDigit(low)
                            length += 3
                        }
                        index += 3
                    } else {
                        out[length] = byte
                        length += 1
                        index += 1
                    }
                }
                let segment = UnsafeBufferPointer(rebasing: out[(segmentStart + 1)..<length])
                let (dots, hasParameters) = dotSegment(segment)
                guard dots > 0 else { continue }
                if hasParameters { refused = true; return 0 }  // `..;x` decoded from `%2e%2e;x`
                if dots == 1 {
                    length = segmentStart
                } else {
                    // Remove the previous segment; with none left, the path climbs above `/`.
                    guard segmentStart > 0 else { refused = true; return 0 }
                    var previous = segmentStart - 1
                    while out[previous] != ASCII.slash { previous -= 1 }
                    length = previous
                }
                if index == range.upperBound {  // a final `.` or `..` leaves a trailing slash
                    out[length] = ASCII.slash
                    length += 1
                }
            }
            // Merge repeated slashes in place.
            var kept = 0
            for position in 0..<length {
                let byte = out[position]
                if byte == ASCII.slash, kept > 0, out[kept - 1] == ASCII.slash { continue }
                out[kept] = byte
                kept += 1
            }
            return kept
        }
        return refused ? nil : result
    }

    @inline(__always)
    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// Validates escaped bytes as UTF-8, one byte at a time, as the Unicode Standard's Table 3-7
/// ("Well-Formed UTF-8 Byte Sequences") lists them: the lead byte sets how many continuation
/// bytes follow and the range of the first of them, which is what excludes overlong forms
/// (`C0`, `C1`, `E0 80`–`E0 9F`, `F0 80`–`F0 8F`), surrogates (`ED A0`–`ED BF`) and code points
/// above U+10FFFF (`F4 90` and up, `F5`–`FF`).
struct EscapedUTF8 {
    /// Continuation bytes still expected.
    private var remaining = 0
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF

    /// No sequence is open.
    var isComplete: Bool { remaining == 0 }

    /// Takes the next escaped byte; false when it cannot continue or start a sequence.
    @inline(__always)
    mutating func accept(_ byte: UInt8) -> Bool {
        if remaining > 0 {
            guard byte >= low && byte <= high else { return false }
            remaining -= 1
            low = 0x80
            high = 0xBF
            return true
        }
        switch byte {
        case 0x00...0x7F: return true
        case 0xC2...0xDF: remaining = 1
        case 0xE0: remaining = 2; low = 0xA0
        case 0xE1...0xEC, 0xEE, 0xEF: remaining = 2
        case 0xED: remaining = 2; high = 0x9F
        case 0xF0: remaining = 3; low = 0x90
        case 0xF1...0xF3: remaining = 3
        case 0xF4: remaining = 3; high = 0x8F
        default: return false  // 80–BF without a lead, C0, C1, F5–FF
        }
        return true
    }
}
