import Crypto
import XCTest
@testable import GatehouseSessions

/// The per-attempt state of an OIDC browser login (SPEC §14.2): sealing, opening, hostile
/// cookies and return_to values.
final class OIDCLoginStateTests: XCTestCase {
    private let now: Int64 = 1_900_000_000
    private let key = OIDCLoginState.key(clientSecret: Array("client-secret".utf8))

    private struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
    }

    private func attempt(_ returnTo: String = "/app?x=1") -> OIDCLoginState {
        var random = Seeded(state: 42)
        return OIDCLoginState.start(returnTo: returnTo, now: now, using: &random)
    }

    func testFreshAttemptsHaveDistinctRandomValues() {
        let a = attempt()
        XCTAssertEqual(a.state.count, 43)
        XCTAssertNotEqual(a.state, a.nonce)
        XCTAssertNotEqual(a.nonce, a.verifier)
        XCTAssertEqual(a.expiresAt, now + OIDCLoginState.lifetimeSeconds)
        XCTAssertEqual(a.cookieName, "gatehouse_oidc_" + a.state.prefix(16))
        var system = SystemRandomNumberGenerator()
        let b = OIDCLoginState.start(returnTo: "/", now: now, using: &system)
        let c = OIDCLoginState.start(returnTo: "/", now: now, using: &system)
        XCTAssertNotEqual(b.state, c.state)
    }

    func testCodeChallengeIsS256OfTheVerifier() {
        // RFC 7636 Appendix B
        let vector = OIDCLoginState(state: "", nonce: "", verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", returnTo: "/",
                                    expiresAt: 0)
        XCTAssertEqual(vector.codeChallenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    func testSealedStateOpensOnlyWithItsKeyAndBeforeExpiry() {
        let a = attempt()
        let sealed = a.sealed(key: key)
        XCTAssertEqual(OIDCLoginState.open(sealed, key: key, now: now), a)
        XCTAssertNil(OIDCLoginState.open(sealed, key: OIDCLoginState.key(clientSecret: Array("other".utf8)), now: now))
        XCTAssertNil(OIDCLoginState.open(sealed, key: key, now: a.expiresAt), "expired")
    }

    func testEveryAlteredByteIsRefused() {
        let sealed = Array(attempt().sealed(key: key).utf8)
        for index in sealed.indices {
            var bytes = sealed
            bytes[index] = bytes[index] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            XCTAssertNil(OIDCLoginState.open(String(decoding: bytes, as: UTF8.self), key: key, now: now), "byte \(index)")
        }
    }

    func testHostileCookieValuesAreRefused() {
        let sealed = attempt().sealed(key: key)
        for value in ["", ".", "a.b", sealed + ".x", sealed.replacingOccurrences(of: ".", with: ""), String(repeating: "A", count: 5000),
                      "%00." + sealed, sealed + "=", "\u{0}"] {
            XCTAssertNil(OIDCLoginState.open(value, key: key, now: now), value)
        }
        // a correctly sealed payload with a hostile return_to is refused too
        let hostile = OIDCLoginState(state: attempt().state, nonce: attempt().nonce, verifier: attempt().verifier,
                                     returnTo: "//evil.example.com", expiresAt: now + 60)
        XCTAssertNil(OIDCLoginState.open(hostile.sealed(key: key), key: key, now: now))
    }

    func testReturnToIsOnlyEverALocalPath() {
        let table: [(String?, String)] = [
            (nil, "/"), ("", "/"), ("/", "/"), ("/app/page?x=1&y=%2F", "/app/page?x=1&y=%2F"), ("/a#frag", "/a#frag"),
            ("//evil.example.com", "/"), ("/\\evil.example.com", "/"), ("\\\\evil", "/"), ("https://evil.example.com", "/"),
            ("evil", "/"), ("/ok\r\nSet-Cookie: x", "/"), ("/ok\u{0}", "/"), ("/tab\there", "/"), ("/space here", "/"),
            ("/caf\u{e9}", "/"), ("/\u{7f}", "/"), (" /a", "/"), ("/" + String(repeating: "a", count: 3000), "/"),
            ("/%2F%2Fevil", "/%2F%2Fevil"),
        ]
        for (input, expected) in table {
            XCTAssertEqual(OIDCLoginState.safeReturnTo(input), expected, input ?? "nil")
        }
    }

    func testOIDCSessionRecordsKeepTheirKindThroughTheStoreEncoding() {
        let record = SessionRecord(idHash: "h", subject: "alice", roles: ["admin"], createdAt: now, lastSeen: now,
                                   absoluteExpiry: now + 60, oidc: true)
        XCTAssertTrue(record.encoded.contains("o=1"))
        XCTAssertEqual(SessionRecord(encoded: record.encoded), record)
        let password = SessionRecord(idHash: "h", subject: "alice", roles: [], createdAt: now, lastSeen: now, absoluteExpiry: now + 60)
        XCTAssertFalse(password.encoded.contains("o="))
        XCTAssertEqual(SessionRecord(encoded: password.encoded)?.oidc, false)
        XCTAssertNil(SessionRecord(encoded: record.encoded + "&o=1"), "a repeated field is refused")
    }
}
