import XCTest
@testable import GatehouseServer

/// Which cookie an upstream's `Set-Cookie` sets, as a browser reads it (RFC 6265bis §5.6).
final class SetCookieNameTests: XCTestCase {
    private func sets(_ value: String, _ name: String = "gatehouse_session") -> Bool {
        Array(value.utf8).withUnsafeBytes { SetCookieName.sets(name, value: $0) }
    }

    func testTheSessionCookieIsRecognizedAsBrowsersReadIt() {
        let ours = [
            "gatehouse_session=abc",
            "gatehouse_session=abc; Path=/; HttpOnly",
            "gatehouse_session=; Max-Age=0",
            "  gatehouse_session\t = abc",
            "gatehouse_session",                        // nameless: sent back as `gatehouse_session`
            "=gatehouse_session=fixed",                 // nameless: sent back as `gatehouse_session=fixed`
            " = gatehouse_session = fixed; Path=/",
            "gatehouse_session=a=b",
        ]
        for value in ours { XCTAssertTrue(sets(value), value) }
    }

    func testOtherCookiesPass() {
        let others = [
            "a=1", "a=gatehouse_session", "GATEHOUSE_SESSION=x", "gatehouse_session2=x", "gatehouse=x",
            "x; gatehouse_session=1", "=", "", ";gatehouse_session=1", "=x=gatehouse_session",
            "gatehouse_sessio=n", "gatehouse session=x",
        ]
        for value in others { XCTAssertFalse(sets(value), value) }
    }

    func testOnlySetCookieHeadersAreRead() {
        func check(_ header: String, _ value: String) -> Bool {
            header.withCString { h in value.withCString { v in SetCookieName.isCookie("sid", setBy: h, v) } }
        }
        XCTAssertTrue(check("Set-Cookie", "sid=1"))
        XCTAssertTrue(check("set-cookie", "sid=1"))
        XCTAssertFalse(check("Set-Cookie2", "sid=1"))
        XCTAssertFalse(check("X-Set-Cookie", "sid=1"))
        XCTAssertFalse(check("Set-Cookie", "sidx=1"))
    }
}
