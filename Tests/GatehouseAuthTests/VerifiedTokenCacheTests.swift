import GatehouseCore
import XCTest
@testable import GatehouseAuth

final class VerifiedTokenCacheTests: XCTestCase {
    static let now: Int64 = 1_750_000_000
    static let secret = Array("cache-secret-of-thirty-two-bytes".utf8)

    /// Two issuers sharing one key; `keys: false` makes a verifier that can verify nothing, so a
    /// success from it proves a cache hit.
    static func verifier(keys: Bool = true, generation: UInt64? = nil) -> JWTVerifier {
        let set = keys ? JWKSet(keys: [JWK(hmacSecret: secret)]) : JWKSet(keys: [])
        return JWTVerifier(issuers: [
            JWTIssuerConfig(name: "a", issuer: "https://a.test", audiences: nil, algorithms: [.hs256], keys: set),
            JWTIssuerConfig(name: "b", issuer: "https://b.test", audiences: nil, algorithms: [.hs256], keys: set),
        ], leeway: 30, generation: generation)
    }

    static func token(exp: Int64 = 4_102_444_800, extra: String = "", secret: [UInt8] = secret) -> String {
        TestTokens.hs256(claims: #"{"iss":"https://a.test","sub":"alice","exp":\#(exp)\#(extra)}"#, secret: secret)
    }

    func testAHitServesTheVerifiedTokenWithoutVerifyingAgain() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token()
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now).outcome, "ok")
        XCTAssertEqual(cache.count.verified, 1)
        // Same generation, no keys: only a hit can succeed.
        let keyless = Self.verifier(keys: false, generation: verifier.generation)
        XCTAssertEqual(keyless.verify(token, now: Self.now).outcome, "no_keys")
        guard case .success(let hit) = cache.verify(token, with: keyless, now: Self.now + 5) else { return XCTFail("miss") }
        XCTAssertEqual(hit.subject, "alice")
    }

    func testATokenThatExpiresWhileCachedIsRefused() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token(exp: Self.now + 60)
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now).outcome, "ok")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now + 89).outcome, "ok")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now + 90).outcome, "token_expired")
        XCTAssertEqual(verifier.verify(token, now: Self.now + 90).outcome, "token_expired")
    }

    func testAHitIsRecheckedAgainstNotBeforeWhenTheClockGoesBack() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token(extra: #","nbf":\#(Self.now)"#)
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now).outcome, "ok")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now - 31).outcome, "token_not_yet_valid")
    }

    func testAHitHonoursTheRouteIssuerList() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token()
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now, allowedIssuers: ["a"]).outcome, "ok")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now, allowedIssuers: ["b"]).outcome, "issuer_not_allowed")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now).outcome, "ok")
    }

    func testANewGenerationFlushesCachedResults() {
        let cache = VerifiedTokenCache()
        let token = Self.token()
        XCTAssertEqual(cache.verify(token, with: Self.verifier(), now: Self.now).outcome, "ok")
        // A reload that dropped the keys: the cached success must not survive it.
        XCTAssertEqual(cache.verify(token, with: Self.verifier(keys: false), now: Self.now).outcome, "no_keys")

        let bad = Self.token(secret: Array("another-secret-of-32-bytes-long!".utf8))
        let old = Self.verifier()
        XCTAssertEqual(cache.verify(bad, with: old, now: Self.now).outcome, "bad_signature")
        // After a JWKS refresh that brings the signing key, the remembered failure is not reused.
        let refreshed = old.replacingKeys(JWKSet(keys: [JWK(hmacSecret: Array("another-secret-of-32-bytes-long!".utf8))]),
                                          forIssuer: "a")
        XCTAssertEqual(cache.verify(bad, with: refreshed, now: Self.now).outcome, "ok")
    }

    func testFailuresAreRememberedForTheTTLWithTheSameReason() {
        let cache = VerifiedTokenCache(negativeTTL: 30)
        let verifier = Self.verifier()
        let bad = Self.token(secret: Array("another-secret-of-32-bytes-long!".utf8))
        XCTAssertEqual(cache.verify(bad, with: verifier, now: Self.now).outcome, "bad_signature")
        XCTAssertEqual(cache.count.failed, 1)
        // Same generation, a key that would verify it: only a remembered failure can say bad_signature.
        let wouldAccept = JWTVerifier(issuers: [JWTIssuerConfig(
            name: "a", issuer: "https://a.test", audiences: nil, algorithms: [.hs256],
            keys: JWKSet(keys: [JWK(hmacSecret: Array("another-secret-of-32-bytes-long!".utf8))]))],
            generation: verifier.generation)
        XCTAssertEqual(cache.verify(bad, with: wouldAccept, now: Self.now + 29).outcome, "bad_signature")
        XCTAssertEqual(cache.verify(bad, with: wouldAccept, now: Self.now + 30).outcome, "ok")

        for garbage in ["garbage", "a.b.c"] {
            XCTAssertEqual(cache.verify(garbage, with: verifier, now: Self.now).outcome, "malformed_token")
            XCTAssertEqual(cache.verify(garbage, with: verifier, now: Self.now).outcome, "malformed_token")
        }
    }

    func testARememberedFailureStillAnswersIssuerNotAllowedWhereTheFullCheckWould() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let bad = Self.token(secret: Array("another-secret-of-32-bytes-long!".utf8))
        XCTAssertEqual(cache.verify(bad, with: verifier, now: Self.now).outcome, "bad_signature")
        XCTAssertEqual(cache.verify(bad, with: verifier, now: Self.now, allowedIssuers: ["b"]).outcome, "issuer_not_allowed")
        XCTAssertEqual(cache.verify(bad, with: verifier, now: Self.now, allowedIssuers: ["a"]).outcome, "bad_signature")
        // A failure before the issuer gate is the same on every route.
        let unknown = TestTokens.hs256(claims: #"{"iss":"https://x.test","exp":4102444800}"#, secret: Self.secret)
        XCTAssertEqual(cache.verify(unknown, with: verifier, now: Self.now).outcome, "unknown_issuer")
        XCTAssertEqual(cache.verify(unknown, with: verifier, now: Self.now, allowedIssuers: ["b"]).outcome, "unknown_issuer")
    }

    func testRouteAndClockDependentFailuresAreNotRemembered() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let early = Self.token(extra: #","nbf":\#(Self.now + 100)"#)
        XCTAssertEqual(cache.verify(early, with: verifier, now: Self.now).outcome, "token_not_yet_valid")
        XCTAssertEqual(cache.verify(early, with: verifier, now: Self.now + 70).outcome, "ok")
        let token = Self.token()
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now, allowedIssuers: ["b"]).outcome, "issuer_not_allowed")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now, allowedIssuers: ["a"]).outcome, "ok")
    }

    func testTheCacheStaysWithinItsCapacity() {
        let cache = VerifiedTokenCache(capacity: 8, negativeCapacity: 4)
        let verifier = Self.verifier()
        for index in 0..<50 {
            XCTAssertEqual(cache.verify(Self.token(extra: #","n":\#(index)"#), with: verifier, now: Self.now).outcome, "ok")
            XCTAssertEqual(cache.verify("garbage-\(index)", with: verifier, now: Self.now).outcome, "malformed_token")
            XCTAssertLessThanOrEqual(cache.count.verified, 8)
            XCTAssertLessThanOrEqual(cache.count.failed, 4)
        }
        // The newest token is always kept.
        let last = Self.token(extra: #","n":49"#)
        XCTAssertEqual(cache.verify(last, with: Self.verifier(keys: false, generation: verifier.generation), now: Self.now).outcome, "ok")
        cache.removeAll()
        XCTAssertEqual(cache.count.verified, 0)
    }

    /// A full table replaces its oldest entry rather than being cleared: one run of described
    /// steps on a cache of four verified and four failed tokens (one set each). `cached` asks a
    /// verifier of the same generation that can verify nothing, so only a hit answers "ok" (or a
    /// remembered failure its reason) there.
    func testAFullTableReplacesItsOldestEntry() {
        let cache = VerifiedTokenCache(capacity: 4, negativeCapacity: 4)
        let verifier = Self.verifier()
        let cached = Self.verifier(keys: false, generation: verifier.generation)
        let tokens = (0..<6).map { Self.token(extra: #","n":\#($0)"#) }
        let other = Array("another-secret-of-32-bytes-long!".utf8)
        let bad = (0..<5).map { Self.token(extra: #","n":\#($0)"#, secret: other) }
        let steps: [(name: String, token: String, with: JWTVerifier, expect: String)] = [
            ("first token verified", tokens[0], verifier, "ok"),
            ("first token from the cache", tokens[0], cached, "ok"),
            ("three more fill the set", tokens[1], verifier, "ok"),
            ("", tokens[2], verifier, "ok"),
            ("", tokens[3], verifier, "ok"),
            ("all four cached", tokens[3], cached, "ok"),
            ("a fifth replaces the oldest", tokens[4], verifier, "ok"),
            ("the oldest is verified again", tokens[0], cached, "no_keys"),
            ("the others stay", tokens[1], cached, "ok"),
            ("the newest stays", tokens[4], cached, "ok"),
            ("failures fill their own table", bad[0], verifier, "bad_signature"),
            ("", bad[1], verifier, "bad_signature"),
            ("", bad[2], verifier, "bad_signature"),
            ("", bad[3], verifier, "bad_signature"),
            ("a remembered failure", bad[0], cached, "bad_signature"),
            ("a fifth failure replaces the oldest", bad[4], verifier, "bad_signature"),
            ("the oldest failure is checked again", bad[0], cached, "no_keys"),
            ("failures did not touch the verified tokens", tokens[2], cached, "ok"),
            ("a token longer than 8 KiB is refused before any lookup",
             String(repeating: "a", count: JWTVerifier.maxTokenBytes + 1), verifier, "token_too_large"),
        ]
        for step in steps {
            XCTAssertEqual(cache.verify(step.token, with: step.with, now: Self.now).outcome, step.expect, step.name)
        }
        XCTAssertEqual(cache.count.verified, 4)
        XCTAssertEqual(cache.count.failed, 4)
    }

    func testASubstringOfTheHeaderIsLookedUpAsTheTokenItSpells() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token()
        let header = "Bearer " + token + "  "
        let slice = header.dropFirst(7).dropLast(2)
        XCTAssertEqual(cache.verify(slice, with: verifier, now: Self.now).outcome, "ok")
        XCTAssertEqual(cache.verify(token, with: Self.verifier(keys: false, generation: verifier.generation), now: Self.now).outcome,
                       "ok")
    }

    /// The remembered answer of a token found inside an `Authorization` value, as the decision
    /// asks it first: the same answer as `verifyNamingIssuer` for a remembered verified token
    /// (issuer list, expiry and not-before rechecked, an expired one forgotten), and nil —
    /// the full path's turn — for a token not remembered, remembered as a failure, from an
    /// older generation, or too large.
    func testTheRememberedAnswerInsideAHeaderMatchesTheFullPath() {
        let cache = VerifiedTokenCache()
        let verifier = Self.verifier()
        let token = Self.token(exp: Self.now + 60)
        var header = "Bearer  " + token + " "
        let bytes = 8..<(8 + token.utf8.count)
        func remembered(_ now: Int64, allowed: Set<String>? = nil, with v: JWTVerifier? = nil) -> String? {
            cache.rememberedNamingIssuer(in: &header, bytes: bytes, with: v ?? verifier, now: now, allowedIssuers: allowed)
                .map { "\($0.0.outcome) \($0.issuer ?? "-")" }
        }
        XCTAssertNil(remembered(Self.now), "not remembered yet")
        XCTAssertEqual(cache.verify(token, with: verifier, now: Self.now).outcome, "ok")
        XCTAssertEqual(remembered(Self.now), "ok a")
        XCTAssertEqual(remembered(Self.now, allowed: ["a"]), "ok a")
        XCTAssertEqual(remembered(Self.now, allowed: ["b"]), "issuer_not_allowed a")
        let full = cache.verifyNamingIssuer(Substring(token), with: verifier, now: Self.now, allowedIssuers: ["b"])
        XCTAssertEqual("\(full.0.outcome) \(full.issuer ?? "-")", "issuer_not_allowed a")
        XCTAssertNil(remembered(Self.now, with: Self.verifier(generation: verifier.generation &+ 1)), "another generation")
        XCTAssertEqual(cache.count.verified, 1, "left for the full path to remove")
        XCTAssertEqual(remembered(Self.now + 90), "token_expired a")
        XCTAssertEqual(cache.count.verified, 0, "an expired token is forgotten")
        XCTAssertNil(remembered(Self.now))

        let bad = Self.token(secret: Array("another-secret-of-thirty-two-byt".utf8))
        XCTAssertEqual(cache.verify(bad, with: verifier, now: Self.now).outcome, "bad_signature")
        var badHeader = "Bearer " + bad
        XCTAssertNil(cache.rememberedNamingIssuer(in: &badHeader, bytes: 7..<(7 + bad.utf8.count), with: verifier, now: Self.now),
                     "a remembered failure is the full path's")

        var huge = "Bearer " + String(repeating: "a", count: JWTVerifier.maxTokenBytes + 1)
        XCTAssertNil(cache.rememberedNamingIssuer(in: &huge, bytes: 7..<huge.utf8.count, with: verifier, now: Self.now))
    }
}
