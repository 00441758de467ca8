import XCTest
@testable import GatehouseServer

/// A `101 Switching Protocols` from an upstream (SPEC §12): the end of HTTP on the connection
/// after an upgrade request, a bad answer to any other request (502) — never an interim answer.
final class UpstreamUpgradeParserTests: XCTestCase {
    /// The events for `text` given in one piece, and the offset after the last one.
    private func events(_ text: String, upgrade: Bool) -> ([String], offset: Int, parser: UpstreamResponseParser) {
        let parser = UpstreamResponseParser()
        parser.upgradeRequested = upgrade
        var out: [String] = []
        var offset = 0
        Array(text.utf8).withUnsafeBytes { input in
            loop: while true {
                switch parser.next(input, &offset) {
                case .needMore: out.append("needMore"); break loop
                case .head: out.append("head \(parser.status)"); if parser.upgraded { break loop }
                case .body(let bytes): out.append("body \(bytes.count)")
                case .done: out.append("done"); break loop
                case .bad: out.append("bad"); break loop
                }
            }
        }
        return (out, offset, parser)
    }

    static let switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

    func testA101ToAnUpgradeEndsHTTPRightAfterItsHead() {
        let (out, offset, parser) = events(Self.switching + "\u{81}\u{05}hello", upgrade: true)
        XCTAssertEqual(out, ["head 101"])
        XCTAssertEqual(offset, Self.switching.utf8.count, "the frame bytes stay for the tunnel")
        XCTAssertTrue(parser.upgraded)
        XCTAssertFalse(parser.keepAlive)
    }

    func testA101WithFramingHeadersStillEndsAtItsHead() {
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\n"
        let (out, offset, _) = events(head + "abcdef", upgrade: true)
        XCTAssertEqual(out, ["head 101"])
        XCTAssertEqual(offset, head.utf8.count)
    }

    func testA101ToAnyOtherRequestIsBad() {
        XCTAssertEqual(events(Self.switching + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", upgrade: false).0, ["bad"])
    }

    func testOtherInterimAnswersAreStillSkippedOnAnUpgrade() {
        let text = "HTTP/1.1 100 Continue\r\n\r\n" + Self.switching
        XCTAssertEqual(events(text, upgrade: true).0, ["head 101"])
    }

    func testAnUpgradeRequestMayGetAnOrdinaryAnswer() {
        let (out, _, parser) = events("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", upgrade: true)
        XCTAssertEqual(out, ["head 403", "body 2", "done"])
        XCTAssertFalse(parser.upgraded)
    }

    func testResetForgetsTheUpgrade() {
        let (_, _, parser) = events(Self.switching, upgrade: true)
        parser.reset()
        XCTAssertFalse(parser.upgraded)
    }
}
