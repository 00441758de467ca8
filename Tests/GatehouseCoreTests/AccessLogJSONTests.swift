@testable import GatehouseCore
import XCTest

/// The JSON access-log line (written by `JSONLineWriter` into reserved memory) against a plain
/// reference built with `JSONText`, for records full of hostile and extreme values.
final class AccessLogJSONTests: XCTestCase {
    private func reference(_ r: AccessLogRecord, timestamp: String) -> String {
        var s = #"{"ts":""# + timestamp + #"","request_id":"#
        JSONText.appendString(r.requestID, to: &s)
        s += r.trace.isNone ? #","trace_id":null"# : #","trace_id":""# + r.trace.traceID + "\""
        s += #","client":"#; JSONText.appendString(r.client, to: &s)
        s += #","method":"#; JSONText.appendString(r.method, to: &s)
        s += #","path":"#; JSONText.appendString(r.path, to: &s)
        s += #","status":\#(r.status),"bytes_sent":\#(r.bytesSent),"duration_ms":"# + JSONText.milliseconds(r.durationMs)
        s += #","route":"#; JSONText.appendOptional(r.route, to: &s)
        s += #","upstream":"#; JSONText.appendOptional(r.upstream, to: &s)
        s += #","upstream_status":"# + (r.upstreamStatus.map(String.init) ?? "null")
        s += #","upstream_ms":"# + (r.upstreamMs.map(JSONText.milliseconds) ?? "null")
        s += #","auth":""# + r.auth.rawValue + #"","subject":"#; JSONText.appendOptional(r.subject, to: &s)
        s += #","decision":""# + r.decision.rawValue + #"","reason":"# + (r.reason.map { "\"\($0.rawValue)\"" } ?? "null")
        if r.shadow { s += #","shadow":true"# }
        s += #","user_agent":"#; JSONText.appendOptional(r.userAgent.map { AccessLogRecord.cut($0) }, to: &s)
        if r.forwardAuth { s += #","forward_auth":true"# }
        return s + "}\n"
    }

    func testLinesEqualTheReferenceForHostileAndExtremeValues() {
        let strings = ["", "a", "plain-value", "quote\"back\\slash", "\u{0}\u{1}\u{1F}\u{7F}\n\r\t", "caf\u{E9} \u{1F600} \u{2028}",
                       String(repeating: "\u{1}", count: 3000), String(repeating: "x", count: 5000),
                       String(repeating: "\u{E9}", count: 700) + "\"", "<script>\u{8}</script>"]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<400 {
            var r = AccessLogRecord()
            func pick() -> String { strings[Int.random(in: 0..<strings.count, using: &rng)] }
            func maybe() -> String? { Bool.random(using: &rng) ? pick() : nil }
            r.requestID = pick(); r.client = pick(); r.method = pick(); r.path = pick()
            r.status = [0, 200, 404, 599, -1, Int.max, Int.min][i % 7]
            r.bytesSent = [0, 1, 1 << 40, -5][i % 4]
            r.durationMs = [0, 0.0004, 0.0005, 1.2345, 99999.9999, -3.5, 1e12][i % 7]
            r.route = maybe(); r.upstream = maybe(); r.subject = maybe(); r.userAgent = maybe()
            r.upstreamStatus = Bool.random(using: &rng) ? 502 : nil
            r.upstreamMs = Bool.random(using: &rng) ? Double(i) / 7 : nil
            r.auth = [.none, .jwt, .session, .introspection][i % 4]
            r.decision = Decision.allCases[i % Decision.allCases.count]
            r.reason = i % 3 == 0 ? nil : Reason.allCases[i % Reason.allCases.count]
            r.shadow = i % 5 == 0
            r.forwardAuth = i % 6 == 0
            if i % 2 == 0 { r.trace = TraceContext(traceHigh: UInt64(i) &* 0x9E37_79B9, traceLow: 7, parent: 1, flags: 1) }
            let stamp = "2026-12-05T22:44:55.\(String(format: "%03d", i % 1000))Z"
            XCTAssertEqual(r.json(timestamp: stamp), reference(r, timestamp: stamp), "record \(i)")
        }
    }

    /// Every byte that needs escaping (control bytes, DEL, `"`, `\`), and its neighbours, at
    /// every position of strings of 0 to 40 bytes — around the 8- and 16-byte steps of the scan
    /// that finds the first one — escaped as the reference escapes them.
    func testEveryEscapedByteAtEveryPositionMatchesTheReference() {
        let specials: [Unicode.Scalar] = ["\u{0}", "\u{1}", "\u{9}", "\u{A}", "\u{1F}", " ", "!", "\"", "#", "[", "\\", "]",
                                          "~", "\u{7F}", "\u{E9}"]
        for length in 0...40 {
            for position in 0..<max(length, 1) {
                for special in specials {
                    var scalars = [Unicode.Scalar](repeating: "x", count: length)
                    if length > 0 { scalars[position] = special }
                    var r = AccessLogRecord()
                    r.path = String(String.UnicodeScalarView(scalars))
                    r.requestID = length % 2 == 0 ? r.path : "id"
                    let stamp = "2026-12-07T01:00:00.000Z"
                    XCTAssertEqual(r.json(timestamp: stamp), reference(r, timestamp: stamp), "\(length) \(position) \(special)")
                }
            }
        }
    }

    /// Lines appended one after another to the same scratch buffer keep what came before.
    func testAppendingKeepsEarlierBytes() {
        var out: [UInt8] = Array("previous line\n".utf8)
        var r = AccessLogRecord()
        r.requestID = "id-1"
        r.appendJSON(timestampPrefix: Array("2026-12-05T22:44:55.".utf8), millis: 7, to: &out)
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("previous line\n{\"ts\":\"2026-12-05T22:44:55.007Z\",\"request_id\":\"id-1\""), text)
        XCTAssertTrue(text.hasSuffix("}\n"))
    }
}
