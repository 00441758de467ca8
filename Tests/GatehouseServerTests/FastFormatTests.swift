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
            XCTAssertEqual(String(cString: fast), String(cString: reference))
            XCTAssertEqual(Int(length), String(cString: reference).utf8.count)
            checked += 1
        }
        XCTAssertEqual(checked, 3)
        var short = [CChar](repeating: 65, count: 8)
        let length = evutil_date_rfc1123(&short, 8, nil)
        XCTAssertEqual(length, 29, "the full length, as snprintf returns it")
        XCTAssertEqual(String(cString: short).count, 7, "cut and terminated")
    }
}
