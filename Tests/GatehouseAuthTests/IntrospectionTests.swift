import GatehouseAuth
import GatehouseCore
import XCTest

/// The RFC 7662 answer reader and the introspection cache (SPEC §14.3).
final class IntrospectionTests: XCTestCase {
    private func parse(_ json: String) throws -> IntrospectionAnswer { try IntrospectionAnswer(json: Array(json.utf8)) }

    func testActiveAnswerKeepsClaimsAndExp() throws {
        let answer = try parse(#"{"active":true,"sub":"alice","exp":1900000000.5,"scope":"a b","aud":["x"],"extra":{"k":[1,2]}}"#)
        XCTAssertTrue(answer.active)
        XCTAssertEqual(answer.expiresAt, 1_900_000_001)
        XCTAssertEqual(answer.claims["sub"], "alice")
    }

    func testInactiveAnswerKeepsNothing() throws {
        let answer = try parse(#"{"active":false,"sub":"alice","exp":"whatever"}"#)
        XCTAssertEqual(answer, .inactive)
    }

    func testHostileAnswersAreRefused() {
        let bad = [
            "", "null", "[]", "{}", #"{"active":"true"}"#, #"{"active":1}"#, #"{"active":null}"#,
            #"{"active":true,"active":false}"#, #"{"active":true,"exp":"1900000000"}"#, #"{"active":true,"sub":7}"#,
            #"{"active":true,"aud":[1]}"#, #"{"active":true,"aud":{"a":1}}"#, #"{"active":true,"scope":["a"]}"#,
            #"{"active":true} x"#, #"{"active":true,"nbf":true}"#, "{\"active\":true,\"sub\":\"a\u{1}\"}",
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ]
        for json in bad {
            XCTAssertThrowsError(try parse(json), json)
        }
    }

    func testKeyIsTheSHA256OfTheToken() {
        XCTAssertEqual(IntrospectionKey(token: "abc"), IntrospectionKey(token: "abc"[...]))
        XCTAssertNotEqual(IntrospectionKey(token: "abc"), IntrospectionKey(token: "abd"))
    }

    func testCacheKeepsActiveUntilMinOfExpAndCacheAndInactiveForTenSeconds() throws {
        let cache = IntrospectionCache(capacity: 100)
        let now: Int64 = 1000
        let soon = try parse(#"{"active":true,"exp":1020}"#)
        XCTAssertEqual(cache.store(soon, for: IntrospectionKey(token: "a"), now: now, cacheSeconds: 60).until, 1020)
        let later = try parse(#"{"active":true,"exp":99999}"#)
        XCTAssertEqual(cache.store(later, for: IntrospectionKey(token: "b"), now: now, cacheSeconds: 60).until, 1060)
        let noExp = try parse(#"{"active":true}"#)
        XCTAssertEqual(cache.store(noExp, for: IntrospectionKey(token: "c"), now: now, cacheSeconds: 60).until, 1060)
        XCTAssertEqual(cache.store(.inactive, for: IntrospectionKey(token: "d"), now: now, cacheSeconds: 60).until, 1010)
        XCTAssertNotNil(cache.lookup(IntrospectionKey(token: "a"), now: 1019))
        XCTAssertNil(cache.lookup(IntrospectionKey(token: "a"), now: 1020))
        XCTAssertNil(cache.lookup(IntrospectionKey(token: "d"), now: 1010))
        XCTAssertNotNil(cache.lookup(IntrospectionKey(token: "b"), now: 1059))
        // an expired answer and a cache of 0 s are not kept
        _ = cache.store(try parse(#"{"active":true,"exp":999}"#), for: IntrospectionKey(token: "e"), now: now, cacheSeconds: 60)
        XCTAssertNil(cache.lookup(IntrospectionKey(token: "e"), now: now))
        _ = cache.store(noExp, for: IntrospectionKey(token: "f"), now: now, cacheSeconds: 0)
        XCTAssertNil(cache.lookup(IntrospectionKey(token: "f"), now: now))
    }

    func testCacheIsBounded() throws {
        let cache = IntrospectionCache(capacity: 50)
        let answer = try parse(#"{"active":true}"#)
        for i in 0..<10_000 { cache.store(answer, for: IntrospectionKey(token: "t\(i)"), now: 0, cacheSeconds: 60) }
        XCTAssertLessThanOrEqual(cache.count, 50)
        XCTAssertNotNil(cache.lookup(IntrospectionKey(token: "t9999"), now: 1), "the newest entry is kept")
    }
}
