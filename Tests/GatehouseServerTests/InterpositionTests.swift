import Foundation
import XCTest

/// Every libevent (and glibc) function gatehouse interposes is defined in this binary and
/// exported, so that libevent's calls through its PLT reach gatehouse's definition. The tests
/// that compare an interposed function with libevent's own (`FastFormatTests`, `ReadLineTests`,
/// `SocketReadTests`) would otherwise compare libevent with itself, and pass.
final class InterpositionTests: XCTestCase {
    func testEveryInterposedFunctionBindsToGatehousesDefinition() {
        let names = ["evbuffer_add_printf", "evutil_date_rfc1123", "evutil_ascii_strcasecmp", "evhttp_find_header",
                     "evhttp_add_header", "__isoc99_sscanf", "evhttp_send_error", "evhttp_parse_firstline_",
                     "evhttp_parse_headers_", "evbuffer_readln", "evbuffer_read"]
        let first = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT: what a PLT call binds to
        let next = UnsafeMutableRawPointer(bitPattern: -1)  // RTLD_NEXT: the definition after this binary's
        for name in names {
            let bound = dlsym(first, name), original = dlsym(next, name)
            XCTAssertNotNil(bound, name)
            XCTAssertNotNil(original, "\(name): no definition after gatehouse's")
            XCTAssertNotEqual(bound, original, "\(name): calls bind to the library's own, not gatehouse's")
        }
    }
}
