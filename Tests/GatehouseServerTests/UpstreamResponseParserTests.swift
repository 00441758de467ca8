import XCTest
@testable import GatehouseServer

/// The upstream response parser on its own: framing, limits, interim responses, split input.
final class UpstreamResponseParserTests: XCTestCase {
    /// Parses `text` fed in pieces of `step` bytes: (status, body, complete, bad).
    private func parse(_ text: String, step: Int = 1 << 20, head: Bool = false, close: Bool = false)
        -> (status: Int, body: String, complete: Bool, bad: Bool, keepAlive: Bool) {
        let parser = UpstreamResponseParser()
        parser.isHeadRequest = head
        let bytes = Array(text.utf8)
        var body: [UInt8] = []
        var bad = false
        var done = false
        var start = 0
        feed: while start < bytes.count {
            let end = min(start + step, bytes.count)
            let piece = Array(bytes[start..<end])
            start = end
            var stop = false
            piece.withUnsafeBytes { input in
                var offset = 0
                while true {
                    switch parser.next(input, &offset) {
                    case .needMore: return
                    case .head: continue
                    case .body(let b): body.append(contentsOf: b)
                    case .done: done = true; stop = true; return
                    case .bad: bad = true; stop = true; return
                    }
                }
            }
            if stop { break feed }
        }
        if close && !done && !bad { done = parser.finishAtClose() }
        return (parser.status, String(decoding: body, as: UTF8.self), done, bad, parser.keepAlive)
    }

    func testContentLength() {
        for step in [1, 3, 1000] {
            let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", step: step)
            XCTAssertEqual(r.status, 200); XCTAssertEqual(r.body, "hello"); XCTAssertTrue(r.complete); XCTAssertTrue(r.keepAlive)
        }
    }

    func testChunkedWithExtensionsAndTrailers() {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        for step in [1, 2, 7, 1000] {
            let r = parse(text, step: step)
            XCTAssertEqual(r.body, "hello world"); XCTAssertTrue(r.complete); XCTAssertFalse(r.bad)
        }
    }

    func testDuplicateContentLength() {
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok").complete)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok").bad)
    }

    func testInterimResponsesAreSkipped() {
        let r = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", step: 4)
        XCTAssertEqual(r.status, 201); XCTAssertEqual(r.body, "x"); XCTAssertTrue(r.complete)
    }

    func testNoBodyResponses() {
        XCTAssertTrue(parse("HTTP/1.1 204 No Content\r\n\r\n").complete)
        XCTAssertTrue(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n").complete)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true).complete)
    }

    func testCloseDelimitedAndConnectionClose() {
        let r = parse("HTTP/1.1 200 OK\r\n\r\nuntil close", close: true)
        XCTAssertEqual(r.body, "until close"); XCTAssertTrue(r.complete); XCTAssertFalse(r.keepAlive)
        XCTAssertFalse(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive)
        XCTAssertFalse(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive)
        XCTAssertTrue(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keepAlive)
    }

    func testTruncatedBodyIsNotComplete() {
        XCTAssertFalse(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close: true).complete)
    }

    func testMalformedHeads() {
        XCTAssertTrue(parse("HTTP/2 200 OK\r\n\r\n").bad)
        XCTAssertTrue(parse("HTTP/1.1 20 OK\r\n\r\n").bad)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n").bad)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\n folded\r\n\r\n").bad)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").bad)
        XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").bad)
        let huge = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: 70_000) + "\r\n\r\n"
        XCTAssertTrue(parse(huge, step: 4096).bad)
    }

    func testHeadersAsCStrings() {
        let parser = UpstreamResponseParser()
        Array("HTTP/1.1 404 Not Found\r\nX-A:  one  \r\nx-b: two\r\nContent-Length: 0\r\n\r\n".utf8).withUnsafeBytes { input in
            var offset = 0
            guard case .head = parser.next(input, &offset) else { return XCTFail("no head") }
        }
        XCTAssertEqual(parser.header("x-a"), "one")
        XCTAssertEqual(parser.header("x-b"), "two")
        XCTAssertEqual(parser.reason.map { String(cString: $0) }, "Not Found")
        XCTAssertTrue(parser.hasContentLength)
    }
}
