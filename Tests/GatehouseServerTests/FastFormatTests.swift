import CEvhttpHook
import CLibevent
import Foundation
import XCTest

/// The interposed `evbuffer_add_printf` and `evutil_date_rfc1123` (Sources/CEvhttpHook/
/// fastformat.c) must write exactly what libevent's own would.
final class FastFormatTests: XCTestCase {
    private func drain(_ buffer: OpaquePointer) -> [UInt8] {
        let count = evbuffer_get_length(buffer)
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBytes { evbuffer_remove(buffer, $0.baseAddress, count) }
        return bytes
    }

    /// (what the fast formatter wrote, what libevent's vprintf wrote) for one call.
    private func both(_ format: String, _ arguments: [CVarArg]) -> (fast: [UInt8], libevent: [UInt8], result: Int32) {
        let fast = evbuffer_new()!, reference = evbuffer_new()!
        defer { evbuffer_free(fast); evbuffer_free(reference) }
        let result = withVaList(arguments) { gh_format_for_test(fast, format, $0) }
        _ = withVaList(arguments) { evbuffer_add_vprintf(reference, format, $0) }
        return (drain(fast), drain(reference), result)
    }

    func testHeaderLinesAreWrittenAsVprintfWouldAtEverySize() {
        let values = ["", "v", "application/json; charset=utf-8", String(repeating: "x", count: 505),
                      String(repeating: "y", count: 506), String(repeating: "z", count: 70_000), "caf\u{E9} \u{1F600}"]
        for key in ["X-Request-Id", "", String(repeating: "K", count: 600)] {
            for value in values {
                key.withCString { k in
                    value.withCString { v in
                        let out = both("%s: %s\r\n", [k, v])
                        XCTAssertEqual(out.fast, out.libevent, "key \(key.count) value \(value.count)")
                        XCTAssertEqual(Int(out.result), out.libevent.count)
                    }
                }
            }
        }
    }

    func testStatusLinesCoverEveryIntegerForm() {
        let numbers: [Int32] = [0, 1, 9, 10, 99, 100, 200, 404, 599, 1000, -1, -42, Int32.max, Int32.min]
        for code in numbers {
            for (major, minor) in [(1, 1), (1, 0), (0, 9), (Int32.max, Int32.min)] as [(Int32, Int32)] {
                "Not Found".withCString { phrase in
                    let out = both("HTTP/%d.%d %d %s\r\n", [major, minor, code, phrase])
                    XCTAssertEqual(out.fast, out.libevent, "\(major).\(minor) \(code)")
                    XCTAssertEqual(Int(out.result), out.libevent.count)
                }
            }
        }
        String(repeating: "P", count: 700).withCString { phrase in
            let out = both("HTTP/%d.%d %d %s\r\n", [Int32(1), Int32(1), Int32(200), phrase])
            XCTAssertEqual(out.fast, out.libevent)
        }
    }

    func testChunkLinesAreLowercaseHex() {
        for size: UInt32 in [0, 1, 9, 10, 15, 16, 255, 4096, 0xabcdef, UInt32.max] {
            let out = both("%x\r\n", [size])
            XCTAssertEqual(out.fast, out.libevent, "\(size)")
            XCTAssertEqual(Int(out.result), out.libevent.count)
        }
    }

    func testOtherFormatsAreLeftToLibevent() {
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        let result = withVaList([Int32(7)]) { gh_format_for_test(buffer, "%d\r\n", $0) }
        XCTAssertEqual(result, -2)
        XCTAssertEqual(evbuffer_get_length(buffer), 0)
        let spaced = withVaList([Int32(7)]) { gh_format_for_test(buffer, "%s:  %s\r\n", $0) }
        XCTAssertEqual(spaced, -2)
    }

    /// The text before the first NUL.
    private func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The cached Date text equals libevent's formatting of the same second, call after call.
    func testTheDateIsTheCurrentSecondInRFC1123() {
        var checked = 0
        for _ in 0..<200 where checked < 3 {
            let before = time(nil)
            var fast = [CChar](repeating: 0, count: 50)
            let length = evutil_date_rfc1123(&fast, 50, nil)
            var now = before
            var parts = tm()
            gmtime_r(&now, &parts)
            var reference = [CChar](repeating: 0, count: 50)
            _ = evutil_date_rfc1123(&reference, 50, &parts)
            guard time(nil) == before else { continue }
            XCTAssertEqual(text(fast), text(reference))
            XCTAssertEqual(Int(length), text(reference).utf8.count)
            checked += 1
        }
        XCTAssertEqual(checked, 3)
        var short = [CChar](repeating: 65, count: 8)
        let length = evutil_date_rfc1123(&short, 8, nil)
        XCTAssertEqual(length, 29, "the full length, as snprintf returns it")
        XCTAssertEqual(text(short).count, 7, "cut and terminated")
    }

    /// libevent's definition: ASCII letters folded, folded bytes compared as signed char.
    private func referenceCompare(_ a: [UInt8], _ b: [UInt8]) -> Int32 {
        func fold(_ c: UInt8) -> Int8 { Int8(bitPattern: (c >= 65 && c <= 90) ? c + 32 : c) }
        var i = 0
        while true {
            let c1 = fold(i < a.count ? a[i] : 0), c2 = fold(i < b.count ? b[i] : 0)
            if c1 < c2 { return -1 }
            if c1 > c2 { return 1 }
            if c1 == 0 { return 0 }
            i += 1
        }
    }

    func testCaseInsensitiveComparisonMatchesLibeventForEveryBytePair() {
        var checked = 0
        for x in 1...255 {
            for y in 1...255 {
                for (a, b) in [([UInt8(x)], [UInt8(y)]), ([65, UInt8(x), 66], [97, UInt8(y), 98]),
                               ([UInt8(x), 67], [UInt8(y)])] {
                    let got = (a + [0]).withUnsafeBufferPointer { pa in
                        (b + [0]).withUnsafeBufferPointer { pb in
                            evutil_ascii_strcasecmp(UnsafeRawPointer(pa.baseAddress!).assumingMemoryBound(to: CChar.self),
                                                    UnsafeRawPointer(pb.baseAddress!).assumingMemoryBound(to: CChar.self))
                        }
                    }
                    if got != referenceCompare(a, b) { XCTFail("\(a) vs \(b): \(got)"); return }
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, 255 * 255 * 3)
        XCTAssertEqual(evutil_ascii_strcasecmp("Content-Length", "content-length"), 0)
        XCTAssertEqual(evutil_ascii_strcasecmp("", ""), 0)
        XCTAssertEqual(evutil_ascii_strcasecmp("Date", "Dat"), 1)
    }

    func testTheVersionScanMatchesGlibcOnEveryForm() {
        let inputs = ["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/9.9", "HTTP/2", "HTTP/2.0", "HTTP/1.1 ", "HTTP/11.1",
                      "HTTP/1.12", "HTTP/ 1.1", "HTTP/+1.1", "HTTP/-1.1", "HTTP/1.1x", "HTTP/1.", "HTTP/", "", "http/1.1",
                      "HTTP/1.1\r", "HTTP/1.1\t", "HTTP/99999999999.1", "HTTP/1.+1", "HTTPS/1.1", "HTTP/1 .1"]
        for input in inputs {
            var major: Int32 = -7, minor: Int32 = -7, ch: CChar = 0
            let fast = gh_scan_for_test(input, "HTTP/%d.%d%c", &major, &minor, &ch)
            var refMajor: Int32 = -7, refMinor: Int32 = -7, refCh: CChar = 0
            let reference = withUnsafeMutablePointer(to: &refMajor) { a in
                withUnsafeMutablePointer(to: &refMinor) { b in
                    withUnsafeMutablePointer(to: &refCh) { c in
                        withVaList([a, b, c]) { vsscanf(input, "HTTP/%d.%d%c", $0) }
                    }
                }
            }
            XCTAssertEqual(fast, reference, input)
            if reference >= 1 { XCTAssertEqual(major, refMajor, input) }
            if reference >= 2 { XCTAssertEqual(minor, refMinor, input) }
            if reference >= 3 { XCTAssertEqual(ch, refCh, input) }
        }
    }

    /// The interposed `evhttp_find_header` finds what libevent's finds: the first field of the
    /// name in any letter case, nil for none — names that differ only in the case of their first
    /// byte, names that share it, bytes that `| 0x20` maps together (`@` and `` ` ``, `[` and `{`,
    /// `\r` and `-`), empty names and keys.
    func testHeaderLookupFindsWhatLibeventFinds() {
        let request = evhttp_request_new(nil, nil)!
        defer { evhttp_request_free(request) }
        let headers = evhttp_request_get_input_headers(request)!
        let fields = [("Host", "a"), ("x-request-id", "b"), ("X-Request-Id", "c"), ("Accept", "d"), ("accept", "e"),
                      ("@x", "f"), ("[y", "g"), ("Authorization", "h"), ("AUTHORIZATIONS", "i"), ("-z", "j"),
                      ("Zeta", "k"), ("z", "l")]
        for (name, value) in fields { XCTAssertEqual(evhttp_add_header(headers, name, value), 0, name) }
        let keys = ["host", "HOST", "Host", "X-REQUEST-ID", "x-request-id", "accept", "ACCEPT", "`x", "@x", "{y", "[y",
                    "authorization", "Authorizations", "\r-z", "-z", "\rz", "zeta", "ZETA", "Z", "z", "", "missing", "H",
                    "hostx", "x-request-i", "\u{7F}", "Authorization\u{E9}"]
        for key in keys {
            let ours = evhttp_find_header(headers, key).map { String(cString: $0) }
            let libevent = gh_original_find_header(headers, key).map { String(cString: $0) }
            XCTAssertEqual(ours, libevent, "key \(key.debugDescription)")
        }
        XCTAssertEqual(evhttp_find_header(headers, "X-REQUEST-ID").map { String(cString: $0) }, "b")  // the first of two
        let empty = evhttp_request_new(nil, nil)!
        defer { evhttp_request_free(empty) }
        XCTAssertNil(evhttp_find_header(evhttp_request_get_input_headers(empty), "Host"))
        XCTAssertNil(gh_original_find_header(evhttp_request_get_input_headers(empty), "Host"))
    }

    /// Every (name, value) in `queue`, in order.
    private func fields(_ queue: UnsafeMutablePointer<evkeyvalq>) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var field = gh_headers_first(queue)
        while let current = field {
            func bytes(_ c: UnsafeMutablePointer<CChar>) -> [UInt8] {
                Array(UnsafeRawBufferPointer(start: c, count: strlen(c)))
            }
            out.append(bytes(current.pointee.key) + [0] + bytes(current.pointee.value))
            field = gh_header_next(current)
        }
        return out
    }

    /// The interposed `evhttp_add_header` accepts and refuses what libevent's does — a CR or LF
    /// in a name or a value (Debian's build refuses an obs-fold too) — and appends the same
    /// copies in the same order: every
    /// control byte, DEL and high byte at every position of short values, runs around the
    /// 16- and 32-byte steps of the scan, a 700-byte value (a Bearer token's line), and 5,000
    /// random ones.
    func testAddHeaderAcceptsAndCopiesWhatLibeventDoes() {
        let ours = evhttp_request_new(nil, nil)!, theirs = evhttp_request_new(nil, nil)!
        defer { evhttp_request_free(ours); evhttp_request_free(theirs) }
        let a = evhttp_request_get_input_headers(ours)!, b = evhttp_request_get_input_headers(theirs)!
        var cases: [([UInt8], [UInt8])] = []
        let names: [[UInt8]] = [Array("Authorization".utf8), [], Array("X\rY".utf8), Array("X\nY".utf8), [13], [10],
                                Array("a b".utf8), [0x7F, 0x41], [0xC3, 0xA9]]
        for name in names { cases.append((name, Array("v".utf8))) }
        let special: [UInt8] = [1, 9, 10, 13, 31, 32, 0x7F, 0x80, 0xFF, 0x41]
        for length in [1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65] {
            for position in 0..<length {
                for byte in special {
                    var value = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                    value[position] = byte
                    cases.append((Array("N".utf8), value))
                    if position + 1 < length {  // the byte before a continuation's space or tab, and its run
                        var folded = value
                        folded[position + 1] = position % 2 == 0 ? 32 : 9
                        cases.append((Array("N".utf8), folded))
                        folded[position + 1] = 10
                        cases.append((Array("N".utf8), folded))
                    }
                }
            }
        }
        var token = [UInt8]("Bearer ".utf8) + [UInt8](repeating: UInt8(ascii: "e"), count: 700)
        cases.append((Array("Authorization".utf8), token))
        token[400] = 13
        cases.append((Array("Authorization".utf8), token))
        token[401] = 32
        cases.append((Array("Authorization".utf8), token))
        cases.append((Array("Authorization".utf8), []))
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [9, 10, 13, 32, 32, 0x41, 0x61, 0x7E, 0x7F, 0x80, 1]
        for _ in 0..<5_000 {
            let count = Int.random(in: 0...80, using: &generator)
            cases.append((Array("R".utf8), (0..<count).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        for (name, value) in cases {
            let resultOurs = (name + [0]).withUnsafeBufferPointer { n in
                (value + [0]).withUnsafeBufferPointer { v in
                    n.withMemoryRebound(to: CChar.self) { n in
                        v.withMemoryRebound(to: CChar.self) { v in evhttp_add_header(a, n.baseAddress, v.baseAddress) }
                    }
                }
            }
            let resultTheirs = (name + [0]).withUnsafeBufferPointer { n in
                (value + [0]).withUnsafeBufferPointer { v in
                    n.withMemoryRebound(to: CChar.self) { n in
                        v.withMemoryRebound(to: CChar.self) { v in gh_original_add_header(b, n.baseAddress, v.baseAddress) }
                    }
                }
            }
            XCTAssertEqual(resultOurs, resultTheirs, "name \(name) value \(value)")
        }
        XCTAssertEqual(fields(a), fields(b))
        XCTAssertGreaterThan(fields(a).count, 1_000)
        XCTAssertLessThan(fields(a).count, cases.count)  // some were refused
        evhttp_clear_headers(a)
        evhttp_clear_headers(b)
    }
}
