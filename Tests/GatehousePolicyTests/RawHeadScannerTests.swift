import XCTest
import GatehousePolicy

/// SPEC §3.2 request heads, RFC 9112 §2.2 and §5.2: the raw-byte checks made before evhttp
/// parses a head. Each case: what it shows, the bytes, and the verdict on them in one piece.
final class RawHeadScannerTests: XCTestCase {
    struct Case {
        var description: String
        var head: [UInt8]
        var expected: RawHeadScanner.Verdict
        init(_ description: String, _ head: String, _ expected: RawHeadScanner.Verdict) {
            self.description = description
            self.head = Array(head.utf8)
            self.expected = expected
        }
        init(_ description: String, bytes: [UInt8], _ expected: RawHeadScanner.Verdict) {
            self.description = description
            self.head = bytes
            self.expected = expected
        }
    }

    typealias Verdict = RawHeadScanner.Verdict

    private func check(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) {
        for testCase in cases {
            let whole = testCase.head.withUnsafeBytes { RawHeadScanner.scan($0) }
            XCTAssertEqual(whole, testCase.expected, testCase.description, file: file, line: line)
            // Split in two at every position, and fed one byte at a time: the same verdict.
            for split in 0...testCase.head.count {
                var scanner = RawHeadScanner()
                testCase.head[..<split].withUnsafeBytes { _ = scanner.feed(UnsafeRawBufferPointer($0)) }
                let verdict = testCase.head[split...].withUnsafeBytes { scanner.feed(UnsafeRawBufferPointer($0)) }
                XCTAssertEqual(verdict, testCase.expected, "\(testCase.description), split at \(split)", file: file, line: line)
            }
            var scanner = RawHeadScanner()
            for byte in testCase.head { [byte].withUnsafeBytes { _ = scanner.feed($0) } }
            XCTAssertEqual(scanner.current, testCase.expected, "\(testCase.description), byte by byte", file: file, line: line)
        }
    }

    private func length(_ text: String) -> Verdict { .complete(length: text.utf8.count) }

    func testCleanHeadsAreComplete() {
        let simple = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        let bareLF = "GET / HTTP/1.1\nHost: a\n\n"
        let tab = "GET / HTTP/1.1\r\nX-A: a\tb\r\n\r\n"
        let high = "GET / HTTP/1.1\r\nX-A: caf\u{e9}\r\n\r\n"
        let noFields = "GET / HTTP/1.0\r\n\r\n"
        check([
            Case("CRLF line ends", simple, length(simple)),
            Case("bare LF line ends, read as evhttp reads them", bareLF, length(bareLF)),
            Case("HTAB inside a value", tab, length(tab)),
            Case("bytes above 0x7F (obs-text) in a value", high, length(high)),
            Case("a head with no fields", noFields, length(noFields)),
        ])
    }

    func testIncompleteHeadsNeedMore() {
        check([
            Case("empty", "", .needMore),
            Case("request line only", "GET / HTTP/1.1\r\n", .needMore),
            Case("ends inside a field", "GET / HTTP/1.1\r\nHost: a", .needMore),
            Case("ends at the CR of the last line", "GET / HTTP/1.1\r\nHost: a\r\n\r", .needMore),
        ])
    }

    func testBytesAfterTheHeadAreNotLookedAt() {
        let head = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
        check([Case("a body with controls", head + "\u{0}\r\u{b}", length(head))])
    }

    func testControlBytesInFieldsAreRefused() {
        let prefix = "GET / HTTP/1.1\r\n"
        let at = prefix.utf8.count
        check([
            Case("bare CR inside a value", prefix + "X-A: a\rX-Auth-Subject: alice\r\n\r\n", .invalid(.controlInField(byte: 13, offset: at + 6))),
            Case("CR CR LF", prefix + "X-A: a\r\r\n\r\n", .invalid(.controlInField(byte: 13, offset: at + 6))),
            Case("NUL in a value", prefix + "X-A: a\u{0}b\r\n\r\n", .invalid(.controlInField(byte: 0, offset: at + 6))),
            Case("VT in a value", prefix + "X-A: a\u{b}b\r\n\r\n", .invalid(.controlInField(byte: 11, offset: at + 6))),
            Case("FF in a value", prefix + "X-A: a\u{c}\r\n\r\n", .invalid(.controlInField(byte: 12, offset: at + 6))),
            Case("DEL in a value", prefix + "X-A: a\u{7f}\r\n\r\n", .invalid(.controlInField(byte: 0x7F, offset: at + 6))),
            Case("ESC in a name", prefix + "X\u{1b}A: a\r\n\r\n", .invalid(.controlInField(byte: 0x1B, offset: at + 1))),
            Case("a field line that is a bare CR", prefix + "\rX: a\r\n\r\n", .invalid(.controlInField(byte: 13, offset: at))),
            Case("NUL at a line start", prefix + "\u{0}X: a\r\n\r\n", .invalid(.controlInField(byte: 0, offset: at))),
        ])
    }

    func testFoldedLinesAreRefused() {
        let prefix = "GET / HTTP/1.1\r\nX-Foo: a\r\n"
        let at = prefix.utf8.count
        check([
            Case("SP continuation (the issue's injection)", prefix + " b\rX-Auth-Subject: alice\r\n\r\n", .invalid(.obsFold(offset: at))),
            Case("HTAB continuation", prefix + "\tb\r\n\r\n", .invalid(.obsFold(offset: at))),
            Case("VT in a folded line: the fold is refused first", prefix + " \u{b}b\r\n\r\n", .invalid(.obsFold(offset: at))),
            Case("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", .invalid(.obsFold(offset: 16))),
            Case("bare-LF fold", "GET / HTTP/1.1\nX: a\n b\n\n", .invalid(.obsFold(offset: 20))),
        ])
    }

    func testBytesThatChangeHowTheRequestLineSplitsAreRefused() {
        check([
            Case("NUL in the target", "GET /a\u{0}b HTTP/1.1\r\n\r\n", .invalid(.controlInRequestLine(byte: 0, offset: 6))),
            Case("HTAB as a separator", "GET\t/ HTTP/1.1\r\n\r\n", .invalid(.controlInRequestLine(byte: 9, offset: 3))),
            Case("bare CR in the target", "GET /a\rb HTTP/1.1\r\n\r\n", .invalid(.controlInRequestLine(byte: 13, offset: 6))),
            // Left to the path policy, which refuses them with path_rejected and logs the target.
            Case("DEL in the target", "GET /\u{7f} HTTP/1.1\r\n\r\n", .complete(length: 19)),
            Case("VT and ESC in the target", "GET /\u{b}\u{1b} HTTP/1.1\r\n\r\n", .complete(length: 20)),
            Case("empty first line", "\r\nGET / HTTP/1.1\r\n\r\n", .invalid(.emptyRequestLine)),
            Case("bare LF first line", "\nGET / HTTP/1.1\r\n\r\n", .invalid(.emptyRequestLine)),
        ])
    }

    func testStopAfterTheRequestLine() {
        var scanner = RawHeadScanner(stopAfterRequestLine: true)
        let bytes = Array("GET / HTTP/1.1\r\n X: \u{0}\r\n".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { scanner.feed($0) }, .complete(length: 16))
    }

    func testFieldsFromTheirFirstLine() {
        var scanner = RawHeadScanner(start: .fields)
        let bytes = Array("Host: a\r\n\r\nrest".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { scanner.feed($0) }, .complete(length: 11))
        var folded = RawHeadScanner(start: .fields)
        XCTAssertEqual(Array(" x\r\n".utf8).withUnsafeBytes { folded.feed($0) }, .invalid(.obsFold(offset: 0)))
    }

    func testHugeHeaderCountsAreScannedInOnePass() {
        var head = "GET / HTTP/1.1\r\n"
        for i in 0..<20_000 { head += "X-\(i): v\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { RawHeadScanner.scan($0) }, .complete(length: bytes.count))
        var poisoned = bytes
        poisoned[bytes.count - 5] = 0x0B
        guard case .invalid(.controlInField(byte: 0x0B, _)) = poisoned.withUnsafeBytes({ RawHeadScanner.scan($0) }) else {
            return XCTFail("VT in the last of 20,000 fields passed")
        }
    }

    func testEveryControlByteIsRefusedInAValue() {
        for byte in UInt8(0)...UInt8(0x7F) where (byte < 0x20 || byte == 0x7F) && byte != 9 && byte != 10 {
            let bytes = Array("GET / HTTP/1.1\r\nX: a".utf8) + [byte] + Array("b\r\n\r\n".utf8)
            guard case .invalid = bytes.withUnsafeBytes({ RawHeadScanner.scan($0) }) else {
                return XCTFail("control byte \(byte) passed")
            }
        }
    }
}
