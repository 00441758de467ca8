import XCTest
@testable import GatehouseSessions

final class SessionCookieTests: XCTestCase {
    private let value = "dGhpcyBpcyBhIDMyIGJ5dGUgc2Vzc2lvbiBpZCEhISE"

    func testLoginSetCookieCarriesEveryAttribute() {
        let table: [(description: String, cookie: SessionCookie, expect: String)] = [
            ("defaults", SessionCookie(),
             "gatehouse_session=\(value); Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=43200"),
            ("domain, strict, another path", SessionCookie(name: "sid", path: "/app", domain: "example.com", sameSite: .strict),
             "sid=\(value); Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Strict; Max-Age=43200"),
            ("not secure, no SameSite", SessionCookie(secure: false, sameSite: nil),
             "gatehouse_session=\(value); Path=/; HttpOnly; Max-Age=43200"),
            ("SameSite=None", SessionCookie(sameSite: SessionCookie.SameSite.none),
             "gatehouse_session=\(value); Path=/; HttpOnly; Secure; SameSite=None; Max-Age=43200"),
        ]
        for row in table {
            XCTAssertEqual(row.cookie.setCookie(value: value, maxAge: 43200), row.expect, row.description)
        }
    }

    func testMaxAgeNeverGoesNegative() {
        XCTAssertTrue(SessionCookie().setCookie(value: value, maxAge: -5).hasSuffix("; Max-Age=0"))
    }

    func testLogoutClearsWithAnEmptyValueAndTheSameAttributes() {
        XCTAssertEqual(SessionCookie().clearingSetCookie(),
                       "gatehouse_session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
        XCTAssertEqual(SessionCookie(name: "sid", path: "/app", domain: "example.com").clearingSetCookie(),
                       "sid=; Path=/app; Domain=example.com; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
    }

    func testTheValueIsFoundInACookieHeader() {
        let cookie = SessionCookie()
        let table: [(description: String, header: String, expect: String?)] = [
            ("alone", "gatehouse_session=\(value)", value),
            ("among others", "a=1; gatehouse_session=\(value); b=2", value),
            ("no spaces", "a=1;gatehouse_session=\(value);b=2", value),
            ("spaces and tabs around", " a=1 ;\t gatehouse_session = \(value) ; b=2", value),
            ("quoted", "gatehouse_session=\"\(value)\"", value),
            ("first of two", "gatehouse_session=first; gatehouse_session=second", "first"),
            ("empty value", "gatehouse_session=", ""),
            ("absent", "a=1; b=2", nil),
            ("name is case-sensitive", "Gatehouse_Session=\(value)", nil),
            ("a longer name is not ours", "gatehouse_session2=\(value)", nil),
            ("a value containing our name is not ours", "x=gatehouse_session=\(value)", nil),
            ("nameless piece", "gatehouse_session", nil),
            ("empty header", "", nil),
        ]
        for row in table {
            XCTAssertEqual(cookie.value(inCookieHeader: row.header), row.expect, row.description)
        }
    }

    func testForwardedHeaderLosesOnlyOurCookie() {
        let cookie = SessionCookie()
        let table: [(description: String, header: String, expect: String?)] = [
            ("ours in the middle", "a=1; gatehouse_session=\(value); b=2", "a=1; b=2"),
            ("ours first", "gatehouse_session=\(value); a=1", "a=1"),
            ("ours last, no spaces", "a=1;b=2;gatehouse_session=\(value)", "a=1; b=2"),
            ("ours twice", "gatehouse_session=x; a=1; gatehouse_session=y", "a=1"),
            ("only ours", "gatehouse_session=\(value)", nil),
            ("only ours, with empty pieces", " ; gatehouse_session=\(value);; ", nil),
            ("none of ours: untouched", "a=1;b=2;  c=\"q\"", "a=1;b=2;  c=\"q\""),
            ("others keep their order and text", "z=9; gatehouse_session=v; y=\"quoted value\"; x", "z=9; y=\"quoted value\"; x"),
            ("similar names stay", "gatehouse_session2=a; Gatehouse_session=b; gatehouse_session=c", "gatehouse_session2=a; Gatehouse_session=b"),
            ("empty header", "", nil),
        ]
        for row in table {
            XCTAssertEqual(cookie.strippingSelf(fromCookieHeader: row.header), row.expect, row.description)
        }
    }

    func testACombiningMarkAfterASemicolonMakesAPairThatIsNotOurs() {
        let header = "a=1;\u{301}gatehouse_session=\(value)"
        // Split on scalars: the mark glues to the next name, so that pair is not ours — it is
        // forwarded as it came, and never read as the session.
        XCTAssertEqual(SessionCookie().strippingSelf(fromCookieHeader: header), header)
        XCTAssertNil(SessionCookie().value(inCookieHeader: header))
    }
}
