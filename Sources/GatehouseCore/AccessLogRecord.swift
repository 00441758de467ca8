/// One access-log line's facts (SPEC §9). Filled in as the request goes through the gateway;
/// rendered once, at the end, as JSON or Apache/nginx combined format.
public struct AccessLogRecord: Sendable {
    public var startMs: Int64 = 0
    public var requestID: String = ""
    public var client: String = ""
    public var method: String = ""
    /// The normalized path, without query ("" when the path was refused: the raw target is
    /// not logged then, as it may carry the very bytes that were refused).
    public var path: String = ""
    /// The request line's target as received, for the combined format.
    public var rawTarget: String = ""
    public var httpVersion: String = "HTTP/1.1"
    public var status: Int = 0
    public var bytesSent: Int = 0
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

    public init() {}

    /// The JSON line (with its trailing newline). Field order is fixed.
    public func json(timestamp: String) -> String {
        var s = "{\"ts\":\""
        s.reserveCapacity(384)
        s += timestamp
        s += "\",\"request_id\":"; JSONText.appendString(requestID, to: &s)
        s += ",\"client\":"; JSONText.appendString(client, to: &s)
        s += ",\"method\":"; JSONText.appendString(method, to: &s)
        s += ",\"path\":"; JSONText.appendString(path, to: &s)
        s += ",\"status\":\(status),\"bytes_sent\":\(bytesSent),\"duration_ms\":"
        s += JSONText.milliseconds(durationMs)
        s += ",\"route\":"; JSONText.appendOptional(route, to: &s)
        s += ",\"upstream\":"; JSONText.appendOptional(upstream, to: &s)
        s += ",\"upstream_status\":"; s += upstreamStatus.map { String($0) } ?? "null"
        s += ",\"upstream_ms\":"; s += upstreamMs.map { JSONText.milliseconds($0) } ?? "null"
        s += ",\"auth\":\""; s += auth.rawValue
        s += "\",\"subject\":"; JSONText.appendOptional(subject, to: &s)
        s += ",\"decision\":\""; s += decision.rawValue
        s += "\",\"reason\":"; s += reason.map { "\"\($0.rawValue)\"" } ?? "null"
        s += ",\"user_agent\":"; JSONText.appendOptional(userAgent, to: &s)
        s += "}\n"
        return s
    }

    /// Apache/nginx combined format, followed by the request id:
    /// `client - user [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "referer" "agent" id`.
    public func combined(clfTimestamp: String) -> String {
        let user = subject.map(CombinedText.field) ?? "-"
        let line = CombinedText.field("\(method) \(rawTarget) \(httpVersion)")
        return "\(client) - \(user) [\(clfTimestamp)] \"\(line)\" \(status) \(bytesSent) \"\(referer.map(CombinedText.field) ?? "-")\" \"\(userAgent.map(CombinedText.field) ?? "-")\" \(requestID)\n"
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
        let whole = micros / 1000, frac = micros % 1000
        let f = String(frac)
        return "\(whole)." + String(repeating: "0", count: 3 - f.count) + f
    }
}

/// Escaping for a quoted field of the combined format: `"` and `\` and control bytes become
/// `\xHH`, as nginx does, so a hostile User-Agent cannot forge a line.
public enum CombinedText {
    public static func field(_ value: String) -> String {
        var out = ""
        for b in value.utf8 {
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
