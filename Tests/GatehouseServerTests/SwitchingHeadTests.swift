import XCTest
@testable import GatehouseServer

/// The client's `101` head from a hostile upstream's (SPEC §12).
final class SwitchingHeadTests: XCTestCase {
    private func head(_ upstream: String, cookie: String? = "gh") -> String? {
        let parser = UpstreamResponseParser()
        parser.upgradeRequested = true
        var offset = 0
        let event = Array(upstream.utf8).withUnsafeBytes { parser.next($0, &offset) }
        guard case .head = event, parser.upgraded else { XCTFail("no 101 head"); return nil }
        return SwitchingHead.bytes(parser, sessionCookie: cookie, requestID: "rid-1").map { String(decoding: $0, as: UTF8.self) }
    }

    func testOnlyWhatMayPassPasses() {
        let text = head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade, X-Secret\r\n"
                        + "X-Secret: s\r\nKeep-Alive: 5\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n"
                        + "X-Request-Id: upstream-id\r\nSet-Cookie: gh=planted\r\nSet-Cookie: theme=dark\r\n"
                        + "Sec-WebSocket-Accept: abc\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
        XCTAssertEqual(text, "HTTP/1.1 101 Switching Protocols\r\nSet-Cookie: theme=dark\r\nSec-WebSocket-Accept: abc\r\n"
                       + "Sec-WebSocket-Protocol: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Request-Id: rid-1\r\n\r\n")
    }

    func testTooManyConnectionTokensAreRefused() {
        let tokens = (0..<65).map { "t\($0)" }.joined(separator: ", ")
        XCTAssertNil(head("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: \(tokens)\r\n\r\n"))
    }
}
