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

    /// The end of the head (LF CR? LF) is found across every split of the input, bare LFs
    /// included, and a control byte other than HTAB (or DEL) in a value refuses the head.
    func testHeadEndAndFieldValuesAtEverySplit() {
        let heads = [
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\tb\r\n\r\nok",
            "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: a\n\nok",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: " + String(repeating: "v", count: 40) + "\r\n\nok",
        ]
        for head in heads {
            for step in 1...12 {
                let r = parse(head, step: step)
                XCTAssertEqual(r.status, 200, "\(head.debugDescription) in pieces of \(step)")
                XCTAssertEqual(r.body, "ok", "\(head.debugDescription) in pieces of \(step)")
                XCTAssertTrue(r.complete)
            }
        }
        for byte in [0x00, 0x01, 0x0B, 0x0D, 0x1F, 0x7F] as [UInt8] {
            let value = String(repeating: "v", count: 20) + String(UnicodeScalar(byte)) + "w"
            for step in [1, 5, 1000] {
                XCTAssertTrue(parse("HTTP/1.1 200 OK\r\nX-A: \(value)\r\nContent-Length: 0\r\n\r\n", step: step).bad,
                              "byte \(byte) in a value, pieces of \(step)")
            }
        }
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
        XCTAssertTrue(parser.forwardsContentLength)
    }

    /// Parses a whole head and reports (bad, forwardsContentLength, keepAlive).
    private func head(_ text: String, isHead: Bool = false) -> (bad: Bool, forwards: Bool, keepAlive: Bool) {
        let parser = UpstreamResponseParser()
        parser.isHeadRequest = isHead
        var bad = false
        Array(text.utf8).withUnsafeBytes { input in
            var offset = 0
            if case .bad = parser.next(input, &offset) { bad = true }
        }
        return (bad, parser.forwardsContentLength, parser.keepAlive)
    }

    // RFC 9112 §6.3 (3): next to Transfer-Encoding, Content-Length frames nothing: it is not
    // forwarded, and the connection that carried both is not reused. The body is de-chunked.
    func testContentLengthBesideChunkedIsNotForwardedAndTheConnectionNotReused() {
        let split = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            + "33\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected\r\n0\r\n\r\n"
        for step in [1, 5, 1000] {
            let r = parse(split, step: step)
            XCTAssertTrue(r.complete); XCTAssertFalse(r.keepAlive)
            XCTAssertEqual(r.body, "helloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected")
        }
        let lengthFirst = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: CHUNKED\r\n\r\n")
        XCTAssertEqual(lengthFirst.bad, false); XCTAssertFalse(lengthFirst.forwards); XCTAssertFalse(lengthFirst.keepAlive)
        XCTAssertTrue(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").forwards)
        XCTAssertFalse(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").forwards)
        XCTAssertFalse(head("HTTP/1.1 200 OK\r\n\r\n").forwards, "close-delimited")
    }

    // Only `chunked`, once, can be forwarded faithfully: any other transfer coding (which the
    // client would get without its name), chunked twice or not last, or in HTTP/1.0 -> 502.
    func testTransferCodingsOtherThanOneChunkedAreRefused() {
        let refused = [
            "Transfer-Encoding: gzip", "Transfer-Encoding: gzip, chunked", "Transfer-Encoding: chunked, gzip",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: identity", "Transfer-Encoding: chunked;q=1", "Transfer-Encoding: ", "Transfer-Encoding: ,",
            "Transfer-Encoding: gzip\r\nContent-Length: 5", "Transfer-Encoding: xchunked",
        ]
        for fields in refused {
            XCTAssertTrue(head("HTTP/1.1 200 OK\r\n\(fields)\r\n\r\n").bad, fields)
            XCTAssertTrue(head("HTTP/1.1 200 OK\r\n\(fields)\r\n\r\n", isHead: true).bad, "HEAD: \(fields)")
        }
        XCTAssertTrue(head("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").bad, "HTTP/1.0 (RFC 9112 §6.1)")
        XCTAssertFalse(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked , \r\n\r\n").bad, "an empty list element is ignored")
    }

    // RFC 9112 §6.3 (5): an invalid Content-Length is an unrecoverable framing error -> 502.
    func testContentLengthThatIsNotOneNumberIsRefused() {
        let refused = ["5x", "+5", "-5", "0x5", "5 5", "5, 5", "5,6", "", "1234567890123456789", "5\t;", "\u{FF15}", "5.0"]
        for value in refused {
            XCTAssertTrue(head("HTTP/1.1 200 OK\r\nContent-Length: \(value)\r\n\r\n").bad, value)
            XCTAssertTrue(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: \(value)\r\n\r\n").bad, value)
        }
        XCTAssertTrue(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").bad)
        XCTAssertTrue(head("HTTP/1.1 200 OK\r\nContent-Length: 05\r\nContent-Length: 5\r\n\r\n").forwards, "same number")
    }

    // A bodiless answer that announced a body: its connection is not reused (SPEC §3.2), and its
    // Content-Length is forwarded only where RFC 9110 §8.6 allows it (HEAD, 304; not 204).
    func testBodilessAnswersThatAnnouncedABodyEndTheirConnection() {
        let cases: [(text: String, isHead: Bool, forwards: Bool, keepAlive: Bool)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, true, false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true, true),
            ("HTTP/1.1 200 OK\r\n\r\n", true, false, true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, false, false),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, true, false),
            ("HTTP/1.1 304 Not Modified\r\n\r\n", false, false, true),
            ("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", false, false, false),
            ("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, false, true),
            ("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, false),
        ]
        for c in cases {
            let r = head(c.text, isHead: c.isHead)
            XCTAssertFalse(r.bad, c.text)
            XCTAssertEqual(r.forwards, c.forwards, "forwards: \(c.text)")
            XCTAssertEqual(r.keepAlive, c.keepAlive, "keepAlive: \(c.text)")
        }
    }

    func testInterimAnswerThatAnnouncedABodyEndsTheConnectionButNotTheNextResponse() {
        let parser = UpstreamResponseParser()
        let text = "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        Array(text.utf8).withUnsafeBytes { input in
            var offset = 0
            guard case .head = parser.next(input, &offset) else { return XCTFail("no head") }
        }
        XCTAssertEqual(parser.status, 200)
        XCTAssertFalse(parser.keepAlive)
        parser.reset()
        Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8).withUnsafeBytes { input in
            var offset = 0
            guard case .head = parser.next(input, &offset) else { return XCTFail("no head") }
        }
        XCTAssertTrue(parser.keepAlive)
    }
}
