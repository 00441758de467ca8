import GatehouseCore
import XCTest
@testable import GatehouseAuth

/// The verifier's order of checks and its claim rules, with HS256 tokens made here.
final class JWTVerifierTests: XCTestCase {
    static let now: Int64 = 1_750_000_000
    static let secretA = Array("a-secret-of-thirty-two-bytes!!!!".utf8)
    static let secretB = Array("b-secret-of-thirty-two-bytes!!!!".utf8)
    static let wrong = Array("not-the-secret-not-the-secret!!!".utf8)

    static func verifier(leeway: Int64 = 30) throws -> JWTVerifier {
        JWTVerifier(issuers: [
            JWTIssuerConfig(name: "a", issuer: "https://a.test", audiences: ["api", "api2"], algorithms: [.hs256],
                            keys: try JWKSet(hmacSecret: secretA)),
            JWTIssuerConfig(name: "b", issuer: "https://b.test", audiences: nil, algorithms: [.hs256, .hs512],
                            keys: JWKSet(keys: [JWK(hmacSecret: secretB, kid: "k1")])),
            JWTIssuerConfig(name: "empty", issuer: "https://empty.test", audiences: nil, algorithms: [.hs256],
                            keys: JWKSet(keys: [])),
        ], leeway: leeway)
    }

    static func claimsA(_ extra: String = "", exp: String = "4102444800") -> String {
        #"{"iss":"https://a.test","aud":"api","sub":"alice","exp":\#(exp)\#(extra)}"#
    }

    func testChecksRunInOrderAndEverythingBeforeTheSignatureComesFirst() throws {
        let verifier = try Self.verifier()
        let table: [(name: String, header: String, claims: String, secret: [UInt8], allowed: Set<String>?, expect: String)] = [
            ("valid", #"{"alg":"HS256"}"#, Self.claimsA(), Self.secretA, nil, "ok"),
            ("alg missing beats a bad signature", #"{"typ":"JWT"}"#, Self.claimsA(), Self.wrong, nil, "alg_not_allowed"),
            ("alg none beats a bad signature", #"{"alg":"none"}"#, Self.claimsA(), Self.wrong, nil, "alg_not_allowed"),
            ("alg not a string", #"{"alg":["HS256"]}"#, Self.claimsA(), Self.secretA, nil, "alg_not_allowed"),
            ("crit beats a bad signature", #"{"alg":"HS256","crit":["b64"],"b64":false}"#, Self.claimsA(), Self.wrong, nil,
             "unsupported_crit"),
            ("crit even when empty", #"{"alg":"HS256","crit":[]}"#, Self.claimsA(), Self.secretA, nil, "unsupported_crit"),
            ("unknown iss beats a bad signature", #"{"alg":"HS256"}"#, #"{"iss":"https://x.test","exp":4102444800}"#, Self.wrong,
             nil, "unknown_issuer"),
            ("iss not a string", #"{"alg":"HS256"}"#, #"{"iss":1,"exp":4102444800}"#, Self.secretA, nil, "malformed_token"),
            ("alg outside this issuer's list", #"{"alg":"HS512"}"#, Self.claimsA(), Self.secretA, nil, "alg_not_allowed"),
            ("route gate beats a bad signature", #"{"alg":"HS256"}"#, Self.claimsA(), Self.wrong, ["b"], "issuer_not_allowed"),
            ("route gate admits", #"{"alg":"HS256"}"#, Self.claimsA(), Self.secretA, ["b", "a"], "ok"),
            ("issuer without keys", #"{"alg":"HS256"}"#, #"{"iss":"https://empty.test","exp":4102444800}"#, Self.secretA, nil,
             "no_keys"),
            ("kid names no key", #"{"alg":"HS256","kid":"k2"}"#, #"{"iss":"https://b.test","exp":4102444800}"#, Self.secretB,
             nil, "unknown_kid"),
            ("kid picks the key", #"{"alg":"HS256","kid":"k1"}"#, #"{"iss":"https://b.test","exp":4102444800}"#, Self.secretB,
             nil, "ok"),
            ("no kid tries every key", #"{"alg":"HS256"}"#, #"{"iss":"https://b.test","exp":4102444800}"#, Self.secretB, nil, "ok"),
            ("a kid never matches a key without one", #"{"alg":"HS256","kid":"k1"}"#, Self.claimsA(), Self.secretA, nil,
             "unknown_kid"),
            ("kid not a string", #"{"alg":"HS256","kid":1}"#, Self.claimsA(), Self.secretA, nil, "malformed_token"),
            ("bad signature", #"{"alg":"HS256"}"#, Self.claimsA(), Self.wrong, nil, "bad_signature"),
            ("exp checked only after the signature", #"{"alg":"HS256"}"#, Self.claimsA(exp: "1"), Self.wrong, nil, "bad_signature"),
            ("jwk header is ignored", #"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#, Self.claimsA(), Self.secretA, nil, "ok"),
        ]
        for row in table {
            let token = TestTokens.hs256(header: row.header, claims: row.claims, secret: row.secret)
            XCTAssertEqual(verifier.verify(token, now: Self.now, allowedIssuers: row.allowed).outcome, row.expect, row.name)
        }
    }

    func testTimeClaimsHonourTheLeeway() throws {
        let verifier = try Self.verifier(leeway: 30)
        let now = Self.now
        let table: [(name: String, extra: String, exp: String, expect: String)] = [
            ("exp in the future", "", "\(now + 1)", "ok"),
            ("exp just inside the leeway", "", "\(now - 29)", "ok"),
            ("exp at the leeway", "", "\(now - 30)", "token_expired"),
            ("fractional exp rounds up", "", "\(now - 30).5", "ok"),
            ("fractional exp past", "", "\(now - 31).5", "token_expired"),
            ("exp far away", "", "1e300", "ok"),
            ("exp negative", "", "-1", "token_expired"),
            ("exp a string", "", #""4102444800""#, "malformed_token"),
            ("exp null", "", "null", "malformed_token"),
            ("nbf at the leeway", #","nbf":\#(now + 30)"#, "4102444800", "ok"),
            ("nbf beyond the leeway", #","nbf":\#(now + 31)"#, "4102444800", "token_not_yet_valid"),
            ("iat at the leeway", #","iat":\#(now + 30)"#, "4102444800", "ok"),
            ("iat beyond the leeway", #","iat":\#(now + 31)"#, "4102444800", "token_not_yet_valid"),
            ("nbf not a number", #","nbf":"soon""#, "4102444800", "malformed_token"),
            ("iat not a number", #","iat":true"#, "4102444800", "malformed_token"),
            ("expired wins over not yet valid", #","nbf":\#(now + 3600)"#, "\(now - 3600)", "token_expired"),
        ]
        for row in table {
            let token = TestTokens.hs256(claims: Self.claimsA(row.extra, exp: row.exp), secret: Self.secretA)
            XCTAssertEqual(verifier.verify(token, now: now).outcome, row.expect, row.name)
        }
        let missing = TestTokens.hs256(claims: #"{"iss":"https://a.test","aud":"api"}"#, secret: Self.secretA)
        XCTAssertEqual(verifier.verify(missing, now: now).outcome, "malformed_token", "exp is required")
    }

    func testAudienceMustNameAConfiguredAudience() throws {
        let verifier = try Self.verifier()
        let table: [(name: String, aud: String?, expect: String)] = [
            ("string", #""api""#, "ok"),
            ("second configured audience", #""api2""#, "ok"),
            ("array containing it", #"["x","api"]"#, "ok"),
            ("array with other types", #"[1,null,"api"]"#, "ok"),
            ("other string", #""web""#, "wrong_audience"),
            ("array without it", #"["x","y"]"#, "wrong_audience"),
            ("empty array", "[]", "wrong_audience"),
            ("number", "1", "wrong_audience"),
            ("object", #"{"api":true}"#, "wrong_audience"),
            ("case differs", #""API""#, "wrong_audience"),
            ("missing", nil, "wrong_audience"),
        ]
        for row in table {
            let aud = row.aud.map { #","aud":\#($0)"# } ?? ""
            let token = TestTokens.hs256(claims: #"{"iss":"https://a.test","exp":4102444800\#(aud)}"#, secret: Self.secretA)
            XCTAssertEqual(verifier.verify(token, now: Self.now).outcome, row.expect, row.name)
        }
        // Issuer b configures no audiences: aud is not checked.
        let noCheck = TestTokens.hs256(claims: #"{"iss":"https://b.test","aud":"anything","exp":4102444800}"#, secret: Self.secretB)
        XCTAssertEqual(verifier.verify(noCheck, now: Self.now).outcome, "ok")
    }

    func testAnIssuerWithoutIssValueIsUsedOnlyWhenItIsTheSoleEntry() throws {
        let keys = try JWKSet(hmacSecret: Self.secretA)
        let sole = JWTVerifier(issuers: [JWTIssuerConfig(name: "any", issuer: nil, audiences: nil, algorithms: [.hs256], keys: keys)])
        let withIss = TestTokens.hs256(claims: #"{"iss":"https://whoever.test","exp":4102444800}"#, secret: Self.secretA)
        let withoutIss = TestTokens.hs256(claims: #"{"exp":4102444800}"#, secret: Self.secretA)
        XCTAssertEqual(sole.verify(withIss, now: Self.now).outcome, "ok")
        XCTAssertEqual(sole.verify(withoutIss, now: Self.now).outcome, "ok")

        let several = JWTVerifier(issuers: [
            JWTIssuerConfig(name: "any", issuer: nil, audiences: nil, algorithms: [.hs256], keys: keys),
            JWTIssuerConfig(name: "b", issuer: "https://b.test", audiences: nil, algorithms: [.hs256], keys: keys),
        ])
        XCTAssertEqual(several.verify(withIss, now: Self.now).outcome, "unknown_issuer")
        XCTAssertEqual(several.verify(withoutIss, now: Self.now).outcome, "unknown_issuer")

        let soleNamed = JWTVerifier(issuers: [JWTIssuerConfig(name: "b", issuer: "https://b.test", audiences: nil,
                                                              algorithms: [.hs256], keys: keys)])
        XCTAssertEqual(soleNamed.verify(withoutIss, now: Self.now).outcome, "unknown_issuer")
    }

    func testTokenSizeLimitIsEightKiB() throws {
        let verifier = try Self.verifier()
        let base = TestTokens.hs256(claims: Self.claimsA(#","pad":"""#), secret: Self.secretA)
        // Grow the claims until the token is exactly at the limit, then one byte over.
        // Each 3 bytes of claims become 4 characters; start just below the limit.
        var padding = String(repeating: "x", count: max(0, (JWTVerifier.maxTokenBytes - base.utf8.count) * 3 / 4 - 8))
        var token = TestTokens.hs256(claims: Self.claimsA(#","pad":"\#(padding)""#), secret: Self.secretA)
        while token.utf8.count < JWTVerifier.maxTokenBytes {
            padding += "x"
            token = TestTokens.hs256(claims: Self.claimsA(#","pad":"\#(padding)""#), secret: Self.secretA)
        }
        if token.utf8.count > JWTVerifier.maxTokenBytes {
            padding.removeLast()
            token = TestTokens.hs256(claims: Self.claimsA(#","pad":"\#(padding)""#), secret: Self.secretA)
        }
        XCTAssertLessThanOrEqual(token.utf8.count, 8192)
        XCTAssertEqual(verifier.verify(token, now: Self.now).outcome, "ok")
        XCTAssertEqual(verifier.verify(token + String(repeating: "A", count: 8193 - token.utf8.count), now: Self.now).outcome,
                       "token_too_large")
    }

    func testVerifiedTokenCarriesIdentityAndClaims() throws {
        let verifier = JWTVerifier(issuers: try Self.verifier().issuers, rolesClaim: "realm_access.roles")
        let token = TestTokens.hs256(claims: #"""
            {"iss":"https://a.test","aud":["api"],"sub":"alice","exp":4102444800.25,"nbf":1,"iat":2,
             "realm_access":{"roles":["admin",7,"ops"]},"scope":"  read  write ","scp":["x"],"email":"a@example.test"}
            """#, secret: Self.secretA)
        guard case .success(let verified) = verifier.verify(token, now: Self.now) else { return XCTFail("not verified") }
        XCTAssertEqual(verified.issuerName, "a")
        XCTAssertEqual(verified.subject, "alice")
        XCTAssertEqual(verified.roles, ["admin", "ops"])
        XCTAssertEqual(verified.scopes, ["read", "write", "x"])
        XCTAssertEqual(verified.expiresAt, 4_102_444_801)
        XCTAssertEqual(verified.notBefore, 1)
        XCTAssertEqual(verified.issuedAt, 2)
        XCTAssertEqual(verified.claims["email"], "a@example.test")

        let numericSub = TestTokens.hs256(claims: Self.claimsA().replacingOccurrences(of: #""alice""#, with: "42"), secret: Self.secretA)
        guard case .success(let other) = verifier.verify(numericSub, now: Self.now) else { return XCTFail("not verified") }
        XCTAssertNil(other.subject)
        XCTAssertEqual(other.roles, [])
    }

    func testRolesClaimShapes() throws {
        let table: [(name: String, rolesClaim: String, claims: String, roles: [String])] = [
            ("array", "roles", #""roles":["a","b"]"#, ["a", "b"]),
            ("single string", "roles", #""roles":"admin""#, ["admin"]),
            ("space-separated string", "roles", #""roles":"a b  c""#, ["a", "b", "c"]),
            ("Flask-JWT-Extended type", "type", #""type":"admin""#, ["admin"]),
            ("Keycloak realm roles", "realm_access.roles", #""realm_access":{"roles":["x","y"]}"#, ["x", "y"]),
            ("Keycloak client roles", "resource_access.my-api.roles",
             #""resource_access":{"my-api":{"roles":["r"]}}"#, ["r"]),
            ("literal dotted member first", "realm_access.roles",
             #""realm_access.roles":["literal"],"realm_access":{"roles":["nested"]}"#, ["literal"]),
            ("namespaced URL claim", "https://example.com/roles", #""https://example.com/roles":["u"]"#, ["u"]),
            ("missing", "roles", #""other":1"#, []),
            ("object is no roles", "roles", #""roles":{"a":true}"#, []),
            ("number is no roles", "roles", #""roles":1"#, []),
        ]
        for row in table {
            let verifier = JWTVerifier(issuers: try Self.verifier().issuers, rolesClaim: row.rolesClaim)
            let token = TestTokens.hs256(claims: Self.claimsA("," + row.claims), secret: Self.secretA)
            guard case .success(let verified) = verifier.verify(token, now: Self.now) else { XCTFail(row.name); continue }
            XCTAssertEqual(verified.roles, row.roles, row.name)
        }
    }

    func testEveryVerifierHasItsOwnGenerationAndReplacingKeysMakesANewOne() throws {
        let first = try Self.verifier()
        let second = try Self.verifier()
        XCTAssertNotEqual(first.generation, second.generation)
        let token = TestTokens.hs256(claims: #"{"iss":"https://empty.test","exp":4102444800}"#, secret: Self.secretB)
        XCTAssertEqual(first.verify(token, now: Self.now).outcome, "no_keys")
        let refreshed = first.replacingKeys(try JWKSet(hmacSecret: Self.secretB), forIssuer: "empty")
        XCTAssertNotEqual(refreshed.generation, first.generation)
        XCTAssertEqual(refreshed.verify(token, now: Self.now).outcome, "ok")
        XCTAssertEqual(refreshed.leeway, first.leeway)
        XCTAssertEqual(JWTVerifier(issuers: [], generation: 77).generation, 77)
    }

    /// SPEC §3.2 Keys: a token without `kid` (or with a kid many keys share) is checked against
    /// at most 8 keys that fit its algorithm; keys of another type or `alg` do not count.
    func testAtMostEightKeysAreTriedForOneToken() throws {
        let right = Array("the-right-secret-of-32-bytes!!!!".utf8)
        func wrong(_ i: Int) -> [UInt8] { Array("wrong-secret-number-\(i)-of-32-bytes!!".utf8) }
        func issuer(_ keys: [JWK]) -> JWTVerifier {
            JWTVerifier(issuers: [JWTIssuerConfig(name: "many", issuer: "https://many.test", audiences: nil,
                                                  algorithms: [.hs256], keys: JWKSet(keys: keys))])
        }
        let claims = #"{"iss":"https://many.test","exp":4102444800}"#
        let table: [(name: String, keys: [JWK], header: String, expect: String)] = [
            ("no kid, right key 8th", (0..<7).map { JWK(hmacSecret: wrong($0)) } + [JWK(hmacSecret: right)],
             #"{"alg":"HS256"}"#, "ok"),
            ("no kid, right key 9th", (0..<8).map { JWK(hmacSecret: wrong($0)) } + [JWK(hmacSecret: right)],
             #"{"alg":"HS256"}"#, "bad_signature"),
            ("no kid, right key 100th", (0..<99).map { JWK(hmacSecret: wrong($0)) } + [JWK(hmacSecret: right)],
             #"{"alg":"HS256"}"#, "bad_signature"),
            ("shared kid, right key 9th", (0..<8).map { JWK(hmacSecret: wrong($0), kid: "same") } + [JWK(hmacSecret: right, kid: "same")],
             #"{"alg":"HS256","kid":"same"}"#, "bad_signature"),
            ("other kids do not count", (0..<20).map { JWK(hmacSecret: wrong($0), kid: "k\($0)") } + [JWK(hmacSecret: right, kid: "me")],
             #"{"alg":"HS256","kid":"me"}"#, "ok"),
            ("keys for another alg do not count", (0..<20).map { JWK(hmacSecret: wrong($0), alg: .hs512) } + [JWK(hmacSecret: right)],
             #"{"alg":"HS256"}"#, "ok"),
        ]
        for row in table {
            let token = TestTokens.hs256(header: row.header, claims: claims, secret: right)
            XCTAssertEqual(issuer(row.keys).verify(token, now: Self.now).outcome, row.expect, row.name)
        }
        XCTAssertEqual(JWTVerifier.maxKeysTried, 8)
    }
}
