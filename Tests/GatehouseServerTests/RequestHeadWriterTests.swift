import XCTest
import GatehouseAuth
@testable import GatehouseServer

/// SPEC §3.2, defence in depth: the upstream request writer never writes a header line that
/// could end early or be read differently (control bytes, folded values, bad names).
final class RequestHeadWriterTests: XCTestCase {
    private func written(_ name: String, _ value: String) -> (String, Int) {
        var writer = RequestHeadWriter(capacity: 64)
        writer.header(name, value)
        return (String(decoding: writer.bytes, as: UTF8.self), writer.dropped)
    }

    /// What the writer wrote from NUL-terminated strings, by `write` (`header` or `clientHeader`).
    private func writtenFromCStrings(_ name: [UInt8], _ value: [UInt8],
                                     _ write: (inout RequestHeadWriter, UnsafePointer<CChar>, UnsafePointer<CChar>) -> Void) -> (String, Int) {
        var writer = RequestHeadWriter(capacity: 64)
        (name + [0]).withUnsafeBufferPointer { n in
            (value + [0]).withUnsafeBufferPointer { v in
                n.withMemoryRebound(to: CChar.self) { n in
                    v.withMemoryRebound(to: CChar.self) { v in write(&writer, n.baseAddress!, v.baseAddress!) }
                }
            }
        }
        return (String(decoding: writer.bytes, as: UTF8.self), writer.dropped)
    }

    private func writtenC(_ name: [UInt8], _ value: [UInt8]) -> (String, Int) {
        writtenFromCStrings(name, value) { $0.header($1, $2) }
    }

    private func writtenClient(_ name: [UInt8], _ value: [UInt8]) -> (String, Int) {
        writtenFromCStrings(name, value) { $0.clientHeader($1, $2) }
    }

    /// A client's header passed the raw-byte check of its head (RawHeadScannerTests,
    /// test_hostile_head.py) before evhttp parsed it; forwarding it checks the name and keeps a
    /// CR backstop, so that a value can never split the line upstream even without that check.
    func testClientHeadersKeepTheNameCheckAndTheCRBackstop() {
        let token = Array(("Bearer " + String(repeating: "eyJhbGciOiJSUzI1NiJ9.", count: 40)).utf8)
        XCTAssertEqual(writtenClient(Array("Authorization".utf8), token).0,
                       "Authorization: " + String(decoding: token, as: UTF8.self) + "\r\n")
        XCTAssertEqual(writtenClient(Array("X-A".utf8), Array("a b\tc caf\u{e9}".utf8)).0, "X-A: a b\tc caf\u{e9}\r\n")
        XCTAssertEqual(writtenClient(Array("X-A".utf8), []).0, "X-A: \r\n")
        for value in [[0x61, 13, 0x62], [13], Array(repeating: UInt8(0x61), count: 700) + [13]] {
            XCTAssertEqual(writtenClient(Array("X-A".utf8), value).0, "", "a CR anywhere in \(value.count) bytes")
            XCTAssertEqual(writtenClient(Array("X-A".utf8), value).1, 1)
        }
        for name in ["", "X A", "X-A:", "X\u{b}A", "X-\u{e9}"] {
            XCTAssertEqual(writtenClient(Array(name.utf8), Array("v".utf8)).1, 1, name.debugDescription)
        }
    }

    func testCleanLinesAreWritten() {
        XCTAssertEqual(written("X-A", "a b\tc").0, "X-A: a b\tc\r\n")
        XCTAssertEqual(writtenC(Array("X-A".utf8), Array("caf\u{e9}".utf8)).0, "X-A: caf\u{e9}\r\n")
    }

    func testValuesWithControlBytesAreLeftOut() {
        let hostile: [(String, String)] = [
            ("bare CR", "a\rX-Auth-Subject: alice"), ("LF", "a\nX-Auth-Subject: alice"), ("CRLF fold", "a\r\n b"),
            ("VT", "a\u{b}b"), ("NUL", "a\u{0}b"), ("DEL", "a\u{7f}"), ("ESC", "\u{1b}[31m"),
        ]
        for (what, value) in hostile {
            XCTAssertEqual(written("X-A", value).0, "", what)
            XCTAssertEqual(written("X-A", value).1, 1, what)
        }
        for byte in [UInt8(13), 10, 11, 0x7F, 1] {
            XCTAssertEqual(writtenC(Array("X-A".utf8), [0x61, byte, 0x62]).0, "", "byte \(byte) from evhttp's strings")
        }
    }

    func testBadNamesAreLeftOut() {
        for name in ["", "X A", "X-A:", "X\rA", "X-\u{e9}"] {
            XCTAssertEqual(written(name, "v").1, 1, name.debugDescription)
        }
    }

    func testTheGatewaysOwnHeadersCheckTheirValues() {
        var writer = RequestHeadWriter(capacity: 8)
        writer.ownHeader("X-Request-Id", "abc")
        writer.ownHeader("X-Forwarded-Host", "evil\r\nX-Auth-Subject: admin")
        writer.ownHeader("Host", String(repeating: "h", count: 3000))
        XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self),
                       "X-Request-Id: abc\r\nHost: " + String(repeating: "h", count: 3000) + "\r\n")
        XCTAssertEqual(writer.dropped, 1)
    }

    /// A caller's identity header lines, made and checked once per token, are appended as they
    /// are, after what came before, and what was left out of them is counted.
    func testIdentityHeaderLinesAreAppendedAsMade() {
        var writer = RequestHeadWriter(capacity: 64)
        writer.header("X-Before", "1")
        let block = IdentityHeaderBlock(pairs: [("X-Auth-Subject", "alice"), ("X-Bad", "a\rb")],
                                        lines: Array("X-Auth-Subject: alice\r\n".utf8), dropped: 1)
        writer.lines(block)
        writer.lines(.none)
        writer.lines(IdentityHeaderBlock(pairs: [], lines: Array(String(repeating: "X-Long: v\r\n", count: 40).utf8), dropped: 0))
        XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self),
                       "X-Before: 1\r\nX-Auth-Subject: alice\r\n" + String(repeating: "X-Long: v\r\n", count: 40))
        XCTAssertEqual(writer.dropped, 1)
    }
}
