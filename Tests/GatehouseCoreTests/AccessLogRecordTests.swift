import XCTest
@testable import GatehouseCore

/// SPEC §3.2 Logs and §9: no client-controlled byte can end or forge a log line, and no field a
/// client sets can make a line longer than a few KiB.
final class AccessLogRecordTests: XCTestCase {
    private func record(client: String = "127.0.0.1", target: String = "/x", agent: String? = nil,
                        referer: String? = nil) -> AccessLogRecord {
        var record = AccessLogRecord()
        record.requestID = "rid"
        record.client = client
        record.method = "GET"
        record.rawTarget = target
        record.path = "/x"
        record.status = 200
        record.userAgent = agent
        record.referer = referer
        return record
    }

    private func isPrintableASCIILine(_ line: String) -> Bool {
        line.utf8.dropLast().allSatisfy { $0 >= 0x20 && $0 < 0x7F } && line.hasSuffix("\n")
    }

    func testCombinedEscapesEveryByteOutsidePrintableASCIIAndTheQuoteAndBackslash() {
        let cases: [(description: String, target: String, expected: String)] = [
            ("quote", "/a\"b", #""GET /a\x22b HTTP/1.1""#),
            ("backslash", "/a\\b", #""GET /a\x5Cb HTTP/1.1""#),
            ("newline", "/a\nb", #""GET /a\x0Ab HTTP/1.1""#),
            ("carriage return", "/a\rb", #""GET /a\x0Db HTTP/1.1""#),
            ("escape sequence", "/\u{1B}[2J", #""GET /\x1B[2J HTTP/1.1""#),
            ("vertical tab", "/a\u{0B}", #""GET /a\x0B HTTP/1.1""#),
            ("DEL", "/a\u{7F}", #""GET /a\x7F HTTP/1.1""#),
            ("non-ASCII as its UTF-8 bytes", "/é", #""GET /\xC3\xA9 HTTP/1.1""#),
            ("a forged line", "/x HTTP/1.1\" 200 1 \"-\" \"-\" x\n6.6.6.6 - root",
             #""GET /x HTTP/1.1\x22 200 1 \x22-\x22 \x22-\x22 x\x0A6.6.6.6 - root HTTP/1.1""#),
        ]
        for testCase in cases {
            let line = record(target: testCase.target).combined(clfTimestamp: "05/Dec/2026:12:00:00 +0000")
            XCTAssertTrue(line.contains(testCase.expected), "\(testCase.description): \(line)")
            XCTAssertTrue(isPrintableASCIILine(line), testCase.description)
        }
    }

    func testCombinedWritesTheBytesReceivedWhenTheTargetIsNotUTF8() {
        let cases: [(description: String, bytes: [UInt8], rawTarget: String, logged: String)] = [
            ("valid UTF-8: its bytes", Array("/é".utf8), "/é", #""GET /\xC3\xA9 HTTP/1.1""#),
            ("Latin-1 and 0xFF: the bytes, not U+FFFD", [0x2F, 0xE9, 0xFF, 0x22], "/\u{FFFD}\u{FFFD}\"",
             #""GET /\xE9\xFF\x22 HTTP/1.1""#),
            ("a truncated 4-byte sequence", [0x2F, 0xF0, 0x9F, 0x98], "/\u{FFFD}", #""GET /\xF0\x9F\x98 HTTP/1.1""#),
            ("plain ASCII", Array("/a".utf8), "/a", #""GET /a HTTP/1.1""#),
        ]
        for testCase in cases {
            var line = record()
            (testCase.bytes + [0]).withUnsafeBufferPointer { pointer in
                pointer.withMemoryRebound(to: CChar.self) { line.setRawTarget($0.baseAddress!) }
            }
            XCTAssertEqual(line.rawTarget, testCase.rawTarget, testCase.description)
            let text = line.combined(clfTimestamp: "05/Dec/2026:12:00:00 +0000")
            XCTAssertTrue(text.contains(testCase.logged), "\(testCase.description): \(text)")
            XCTAssertTrue(isPrintableASCIILine(text), testCase.description)
        }
    }

    func testCombinedEscapesTheClientAgentRefererAndRequestID() {
        var hostile = record(client: "6.6.6.6 - root \"\n", agent: "a\"\u{1B}", referer: "r\\\n")
        hostile.requestID = "id\n"
        let line = hostile.combined(clfTimestamp: "05/Dec/2026:12:00:00 +0000")
        XCTAssertTrue(line.hasPrefix(#"6.6.6.6 - root \x22\x0A - - ["#), line)
        XCTAssertTrue(line.contains(#""r\x5C\x0A" "a\x22\x1B" id\x0A"#), line)
        XCTAssertTrue(isPrintableASCIILine(line))
    }

    func testAgentAndRefererAreCutAt1KiBInBothFormats() {
        let long = record(agent: String(repeating: "A", count: 30_000), referer: String(repeating: "R", count: 30_000))
        let combined = long.combined(clfTimestamp: "05/Dec/2026:12:00:00 +0000")
        XCTAssertTrue(combined.contains("\"" + String(repeating: "A", count: 1024) + "\" rid"))
        XCTAssertTrue(combined.contains("\"" + String(repeating: "R", count: 1024) + "\" \""))
        XCTAssertLessThan(combined.utf8.count, 2_300)
        let json = long.json(timestamp: "2026-12-05T12:00:00.000Z")
        XCTAssertTrue(json.contains(#""user_agent":""# + String(repeating: "A", count: 1024) + "\"}"))
        XCTAssertLessThan(json.utf8.count, 1_500)
        // Control bytes are cut before escaping: 1 KiB of them is at most 6 KiB of \u00XX.
        let controls = record(agent: String(repeating: "\u{1}", count: 30_000)).json(timestamp: "2026-12-05T12:00:00.000Z")
        XCTAssertLessThan(controls.utf8.count, 7_000)
    }

    func testCutKeepsWholeScalars() {
        let cases: [(description: String, value: String, limit: Int, expected: String)] = [
            ("short: unchanged", "abc", 4, "abc"),
            ("exactly the limit", "abcd", 4, "abcd"),
            ("ASCII cut", "abcde", 4, "abcd"),
            ("2-byte scalar across the limit", "abcé", 4, "abc"),
            ("4-byte scalar across the limit", "a😀", 4, "a"),
            ("4-byte scalar that fits", "😀b", 4, "😀"),
            ("only a scalar too long", "😀", 3, ""),
        ]
        for testCase in cases {
            XCTAssertEqual(AccessLogRecord.cut(testCase.value, to: testCase.limit), testCase.expected, testCase.description)
        }
    }

    func testReceivedPathIsTheTargetBeforeTheQueryCutAt1KiB() {
        XCTAssertEqual(AccessLogRecord.receivedPath("/a%2Fb?x=1"), "/a%2Fb")
        XCTAssertEqual(AccessLogRecord.receivedPath("/a%2Fb"), "/a%2Fb")
        XCTAssertEqual(AccessLogRecord.receivedPath("?x"), "")
        XCTAssertEqual(AccessLogRecord.receivedPath("http://h/a?b?c"), "http://h/a")
        XCTAssertEqual(AccessLogRecord.receivedPath("/" + String(repeating: "p", count: 5000)).utf8.count, 1024)
    }

    func testJSONEscapesEveryControlCharacterInThePath() {
        var refused = record()
        refused.path = "/a\"\\\n\u{1B}\u{7F}"
        let json = refused.json(timestamp: "2026-12-05T12:00:00.000Z")
        XCTAssertTrue(json.contains(#""path":"/a\"\\\n\u001b\u007f""#), json)
        XCTAssertTrue(isPrintableASCIILine(json))
    }

    /// SPEC §9, §11: `forward_auth: true` on a forward-auth decision's line, absent elsewhere.
    func testForwardAuthFieldAppearsOnlyWhenSet() {
        var line = record().json(timestamp: "2026-12-05T12:00:00.123Z")
        XCTAssertFalse(line.contains("forward_auth"), line)
        var decision = record()
        decision.forwardAuth = true
        line = decision.json(timestamp: "2026-12-05T12:00:00.123Z")
        XCTAssertTrue(line.hasSuffix(#","forward_auth":true}"# + "\n"), line)
    }
}

