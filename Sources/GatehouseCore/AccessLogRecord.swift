/// One access-log line's facts (SPEC §9). Filled in as the request goes through the gateway;
/// rendered once, at the end, as JSON or Apache/nginx combined format.
public struct AccessLogRecord: Sendable {
    public var startMs: Int64 = 0
    public var requestID: String = ""
    /// The request's W3C trace (SPEC §15.3): kept from a valid `traceparent`, else made; its
    /// trace id is logged as `trace_id` (null only when no trace was set).
    public var trace: TraceContext = .none
    public var client: String = ""
    public var method: String = ""
    /// The normalized path, without query; for a path the path policy refused, the path as
    /// received (``receivedPath(_:)``), so that operators see what was tried (SPEC §3.2).
    public var path: String = ""
    /// The request line's target as received, for the combined format (invalid UTF-8 repaired:
    /// see ``rawTargetBytes``).
    public var rawTarget: String = ""
    /// The target's bytes when they are not valid UTF-8 (nil otherwise, the common case), so
    /// that the combined format writes the bytes received, not their repair (SPEC §3.2).
    public var rawTargetBytes: [UInt8]? = nil
    public var httpVersion: String = "HTTP/1.1"
    public var status: Int = 0
    public var bytesSent: Int = 0
    /// Bytes from the client through a WebSocket tunnel (SPEC §12); nil (not logged) elsewhere.
    public var bytesReceived: Int? = nil
    public var durationMs: Double = 0
    public var route: String? = nil
    public var upstream: String? = nil
    public var upstreamStatus: Int? = nil
    public var upstreamMs: Double? = nil
    public var auth: AuthMethod = .none
    public var subject: String? = nil
    public var decision: Decision = .allow
    public var reason: Reason? = nil
    public var userAgent: String? = nil
    public var referer: String? = nil
    /// A refusal on a route in shadow mode, forwarded anyway (SPEC §15.2): `decision` and
    /// `reason` are what would have happened. Written only when true.
    public var shadow: Bool = false
    /// A forward-auth decision (SPEC §11): logged as `forward_auth: true`, absent otherwise.
    public var forwardAuth: Bool = false

    public init() {}

    /// Sets ``rawTarget`` (and ``rawTargetBytes`` when the target is not valid UTF-8) from the
    /// request line's target as evhttp holds it.
    public mutating func setRawTarget(_ target: UnsafePointer<CChar>) {
        if let valid = String(validatingCString: target) {
            rawTarget = valid
        } else {
            rawTarget = String(cString: target)
            var length = 0
            while target[length] != 0 { length += 1 }
            rawTargetBytes = Array(UnsafeRawBufferPointer(start: target, count: length))
        }
    }

    /// The longest `user_agent`, `referer` and refused `path` written to a log line (SPEC §3.2):
    /// a client must not be able to make one request cost a megabyte of log.
    public static let fieldLimit = 1024

    /// The path part (before `?`) of a request target as received, cut at ``fieldLimit``:
    /// what a refused request logs in `path`. Every byte is escaped when the line is written.
    public static func receivedPath(_ target: String) -> String {
        let utf8 = target.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        return cut(String(Substring(utf8[..<end])))
    }

    /// `value` when it has at most `limit` UTF-8 bytes, else its longest prefix of whole
    /// Unicode scalars that fits.
    public static func cut(_ value: String, to limit: Int = fieldLimit) -> String {
        guard value.utf8.count > limit else { return value }
        let bytes = Array(value.utf8.prefix(limit + 1))
        var end = limit
        while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a scalar
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// The JSON line (with its trailing newline). Field order is fixed. `timestamp` is RFC 3339
    /// with milliseconds (`2026-11-25T15:44:55.123Z`); the loops use ``appendJSON`` directly.
    public func json(timestamp: String) -> String {
        let utf8 = Array(timestamp.utf8)
        let millis = utf8.count >= 4 ? Int(String(decoding: utf8[(utf8.count - 4)..<(utf8.count - 1)], as: UTF8.self)) ?? 0 : 0
        var out: [UInt8] = []
        appendJSON(timestampPrefix: Array(utf8.prefix(max(0, utf8.count - 4))), millis: millis, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Apache/nginx combined format, followed by the request id:
    /// `client - user [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "referer" "agent" id`.
    ///
    /// Every byte outside printable ASCII, and `"` and `\`, is written as `\xHH` in every field
    /// that a client can influence — the client address included, though it is always an IP
    /// literal (SPEC §3.2) — so a line can never be forged; referer and user agent are cut at
    /// ``fieldLimit`` bytes first.
    public func combined(clfTimestamp: String) -> String {
        let user = subject.map(CombinedText.field) ?? "-"
        let line = CombinedText.field("\(method) ") + (rawTargetBytes.map(CombinedText.field(bytes:)) ?? CombinedText.field(rawTarget))
            + CombinedText.field(" \(httpVersion)")
        let referer = self.referer.map { CombinedText.field(Self.cut($0)) } ?? "-"
        let agent = userAgent.map { CombinedText.field(Self.cut($0)) } ?? "-"
        return "\(CombinedText.field(client)) - \(user) [\(clfTimestamp)] \"\(line)\" \(status) \(bytesSent) \"\(referer)\" \"\(agent)\" \(CombinedText.field(requestID))\n"
    }
}

/// JSON string escaping for log lines (RFC 8259 §7): quotes, backslash, control characters;
/// invalid UTF-8 has already been repaired by `String`.
public enum JSONText {
    public static func appendString(_ value: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for b in value.utf8 where b < 0x20 || b == 0x22 || b == 0x5C || b == 0x7F {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += value
        } else {
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }

    public static func appendOptional(_ value: String?, to out: inout String) {
        if let value { appendString(value, to: &out) } else { out += "null" }
    }

    /// A millisecond figure with three decimals (microsecond resolution).
    public static func milliseconds(_ value: Double) -> String {
        let micros = Int64((value * 1000).rounded())
        let whole = micros.magnitude / 1000, frac = micros.magnitude % 1000
        let f = String(frac)
        return (micros < 0 ? "-" : "") + "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
    }
}

/// Escaping for a quoted field of the combined format: `"` and `\` and control bytes become
/// `\xHH`, as nginx does, so a hostile User-Agent cannot forge a line.
public enum CombinedText {
    public static func field(_ value: String) -> String {
        field(bytes: value.utf8)
    }

    /// The same for raw bytes (a request target that is not valid UTF-8).
    public static func field(bytes: some Sequence<UInt8>) -> String {
        var out = ""
        for b in bytes {
            if b < 0x20 || b == 0x22 || b == 0x5C || b >= 0x7F {
                let hex = String(b, radix: 16, uppercase: true)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(b))
            }
        }
        return out
    }
}

// MARK: byte rendering: the JSON line appended to a reused byte buffer, without intermediate
// Strings (the access log is written for every request).
extension AccessLogRecord {
    /// Appends the JSON line; `timestampPrefix` is `YYYY-MM-DDTHH:MM:SS.` (cached per second).
    public func appendJSON(timestampPrefix: [UInt8], millis: Int, to out: inout [UInt8]) {
        let start = out.count, bound = jsonBound(prefixCount: timestampPrefix.count)
        out.append(contentsOf: repeatElement(0, count: bound))
        let written = out.withUnsafeMutableBufferPointer { buffer in
            timestampPrefix.withUnsafeBufferPointer { prefix in
                var w = JSONLineWriter(buffer.baseAddress! + start)
                writeJSON(&w, prefix: prefix, millis: millis)
                return w.count
            }
        }
        precondition(written <= bound, "access-log line over its bound")
        out.removeLast(bound - written)
    }

    /// The most bytes ``appendJSON`` can write: the fixed text, and every string field escaped
    /// at its worst (6 bytes per byte, `\u00XX`).
    func jsonBound(prefixCount: Int) -> Int {
        var strings = requestID.utf8.count + client.utf8.count + method.utf8.count + path.utf8.count
        strings += (route?.utf8.count ?? 0) + (upstream?.utf8.count ?? 0) + (subject?.utf8.count ?? 0)
        strings += min(userAgent?.utf8.count ?? 0, Self.fieldLimit)
        return 560 + prefixCount + 6 * strings  // 512, and a tunnel line's `bytes_received`
    }

    private func writeJSON(_ w: inout JSONLineWriter, prefix: UnsafeBufferPointer<UInt8>, millis: Int) {
        w.literal(#"{"ts":""#); w.bytes(prefix); w.digits(millis, width: 3)
        w.literal(#"Z","request_id":"#); w.string(requestID)
        if trace.isNone {
            w.literal(#","trace_id":null"#)
        } else {
            w.literal(#","trace_id":""#); trace.writeTraceID(&w); w.byte(0x22)
        }
        w.literal(#","client":"#); w.string(client)
        w.literal(#","method":"#); w.string(method)
        w.literal(#","path":"#); w.string(path)
        w.literal(#","status":"#); w.int(status)
        w.literal(#","bytes_sent":"#); w.int(bytesSent)
        if let bytesReceived { w.literal(#","bytes_received":"#); w.int(bytesReceived) }
        w.literal(#","duration_ms":"#); w.ms(durationMs)
        w.literal(#","route":"#); w.optional(route)
        w.literal(#","upstream":"#); w.optional(upstream)
        w.literal(#","upstream_status":"#)
        if let upstreamStatus { w.int(upstreamStatus) } else { w.literal("null") }
        w.literal(#","upstream_ms":"#)
        if let upstreamMs { w.ms(upstreamMs) } else { w.literal("null") }
        w.literal(#","auth":""#); w.raw(auth.rawValue)
        w.literal(#"","subject":"#); w.optional(subject)
        w.literal(#","decision":""#); w.raw(decision.rawValue)
        w.literal(#"","reason":"#)
        if let reason { w.byte(0x22); w.raw(reason.rawValue); w.byte(0x22) } else { w.literal("null") }
        if shadow { w.literal(#","shadow":true"#) }
        w.literal(#","user_agent":"#); w.optional(userAgent.map { Self.cut($0) })
        if forwardAuth { w.literal(#","forward_auth":true"#) }
        w.literal("}\n")
    }
}

/// JSON values appended as bytes (strings escaped as ``JSONText`` does).
public enum JSONBytes {
    @inline(__always)
    public static func string(_ value: String, to out: inout [UInt8]) {
        for b in value.utf8 where b < 0x20 || b == 0x22 || b == 0x5C || b == 0x7F {
            var s = ""
            JSONText.appendString(value, to: &s)
            out.append(contentsOf: s.utf8)
            return
        }
        out.append(0x22)
        out.append(contentsOf: value.utf8)
        out.append(0x22)
    }

    @inline(__always)
    public static func optional(_ value: String?, to out: inout [UInt8]) {
        if let value { string(value, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    public static func int(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(0x2D); int(-value, to: &out); return }
        var buf: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var v = value, n = 0
        withUnsafeMutableBytes(of: &buf) { p in
            repeat { p[19 - n] = UInt8(48 + v % 10); v /= 10; n += 1 } while v > 0
            out.append(contentsOf: p[(20 - n)...])
        }
    }

    public static func digits(_ value: Int, width: Int, to out: inout [UInt8]) {
        var d = 1
        for _ in 1..<width { d *= 10 }
        var v = value
        while d > 0 { out.append(UInt8(48 + (v / d) % 10)); v %= d; d /= 10 }
    }

    /// Same as JSONText.milliseconds: three decimals.
    public static func ms(_ value: Double, to out: inout [UInt8]) {
        let micros = Int64((value * 1000).rounded())
        if micros < 0 { out.append(contentsOf: JSONText.milliseconds(value).utf8); return }
        int(Int(micros / 1000), to: &out)
        out.append(0x2E)
        digits(Int(micros % 1000), width: 3, to: &out)
    }
}
