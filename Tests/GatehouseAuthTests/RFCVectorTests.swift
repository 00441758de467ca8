import GatehouseCore
import XCTest
@testable import GatehouseAuth

/// Published test vectors: RFC 7515 Appendix A (JWS) and RFC 8037 Appendix A.4 (Ed25519).
/// Every character was checked against the RFCs and re-verified with Python `cryptography`.
final class RFCVectorTests: XCTestCase {
    // RFC 7515 A.1: HS256. The header has a CRLF and a leading space inside.
    static let a1Token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    static let a1Key = #"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#

    // RFC 7515 A.2: RS256 with a 2048-bit key.
    static let a2Token = "eyJhbGciOiJSUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
    static let a2Key = #"{"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#

    // RFC 7515 A.3: ES256.
    static let a3Token = "eyJhbGciOiJFUzI1NiJ9"
        + ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    static let a3Key = #"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#

    // RFC 7515 A.4: ES512 (P-521), which gatehouse does not support.
    static let a4Token = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA"
        + ".AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn"

    // RFC 8037 A.4/A.5: Ed25519 over the payload "Example of Ed25519 signing" (not a JWT).
    static let ed25519Token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        + ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    static let ed25519Key = #"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#

    /// The examples' exp is 1300819380 (2011-03-22T18:43:00Z).
    static let beforeExp: Int64 = 1_300_819_000

    /// A sole issuer without `issuer`, so `iss: "joe"` is accepted and tampering shows as a
    /// signature failure rather than an issuer mismatch.
    func verifier(_ algorithm: JWSAlgorithm, jwk: String) throws -> JWTVerifier {
        let key = try JWK(json: try JSONParser.parse(jwk))
        return JWTVerifier(issuers: [JWTIssuerConfig(name: "rfc", issuer: nil, audiences: nil, algorithms: [algorithm],
                                                     keys: JWKSet(keys: [key]))], leeway: 0)
    }

    func testRFC7515AppendixAExamplesVerify() throws {
        let table: [(name: String, algorithm: JWSAlgorithm, token: String, key: String)] = [
            ("A.1 HS256", .hs256, Self.a1Token, Self.a1Key),
            ("A.2 RS256", .rs256, Self.a2Token, Self.a2Key),
            ("A.3 ES256", .es256, Self.a3Token, Self.a3Key),
        ]
        for row in table {
            let result = try verifier(row.algorithm, jwk: row.key).verify(row.token, now: Self.beforeExp)
            guard case .success(let token) = result else { XCTFail("\(row.name): \(result.outcome)"); continue }
            XCTAssertEqual(token.expiresAt, 1_300_819_380, row.name)
            XCTAssertEqual(token.claims["iss"], "joe", row.name)
            XCTAssertEqual(token.claims["http://example.com/is_root"], true, row.name)
        }
    }

    func testRFC7515ExamplesFailWhenOneBitChanges() throws {
        let table: [(name: String, algorithm: JWSAlgorithm, token: String, key: String)] = [
            ("A.1 HS256", .hs256, Self.a1Token, Self.a1Key),
            ("A.2 RS256", .rs256, Self.a2Token, Self.a2Key),
            ("A.3 ES256", .es256, Self.a3Token, Self.a3Key),
        ]
        for row in table {
            let verifier = try verifier(row.algorithm, jwk: row.key)
            // Payload byte 10 is the "e" of "joe": flipping its low bit gives "jod", still valid JSON.
            let payloadFlipped = TestTokens.flippingBit(in: row.token, part: 1, byte: 10)
            XCTAssertEqual(verifier.verify(payloadFlipped, now: Self.beforeExp).outcome, "bad_signature", "\(row.name) payload")
            for position in [0, 7, -1] {
                let signatureFlipped = TestTokens.flippingBit(in: row.token, part: 2, byte: position, bit: 3)
                XCTAssertEqual(verifier.verify(signatureFlipped, now: Self.beforeExp).outcome, "bad_signature",
                               "\(row.name) signature byte \(position)")
            }
        }
    }

    func testRFC7515ExampleA1IsExpiredAtItsExp() throws {
        let verifier = try verifier(.hs256, jwk: Self.a1Key)
        XCTAssertEqual(verifier.verify(Self.a1Token, now: 1_300_819_379).outcome, "ok")
        XCTAssertEqual(verifier.verify(Self.a1Token, now: 1_300_819_380).outcome, "token_expired")
    }

    func testRFC7515ExampleA4ES512IsRefusedAsAlgorithmNotAllowed() throws {
        let everything = JWTVerifier(issuers: [JWTIssuerConfig(
            name: "rfc", issuer: nil, audiences: nil, algorithms: Set(JWSAlgorithm.allCases),
            keys: JWKSet(keys: [try JWK(json: try JSONParser.parse(Self.a3Key))]))])
        XCTAssertEqual(everything.verify(Self.a4Token, now: Self.beforeExp).outcome, "alg_not_allowed")
        XCTAssertNil(JWSAlgorithm(rawValue: "ES512"))
    }

    func testRFC7515ExampleA2KeyIsRefusedForHMACAndA1KeyForRSA() throws {
        // Same tokens, keys of the other family: no key-type confusion.
        let rsaKey = try JWK(json: try JSONParser.parse(Self.a2Key))
        let hmacKey = try JWK(json: try JSONParser.parse(Self.a1Key))
        let both = JWTVerifier(issuers: [JWTIssuerConfig(name: "rfc", issuer: nil, audiences: nil,
                                                         algorithms: [.hs256, .rs256], keys: JWKSet(keys: [rsaKey]))])
        XCTAssertEqual(both.verify(Self.a1Token, now: Self.beforeExp).outcome, "bad_signature")
        let hmacOnly = JWTVerifier(issuers: [JWTIssuerConfig(name: "rfc", issuer: nil, audiences: nil,
                                                             algorithms: [.hs256, .rs256], keys: JWKSet(keys: [hmacKey]))])
        XCTAssertEqual(hmacOnly.verify(Self.a2Token, now: Self.beforeExp).outcome, "bad_signature")
    }

    func testRFC8037Ed25519SignatureVerifiesUnderBothNames() throws {
        let key = try JWK(json: try JSONParser.parse(Self.ed25519Key))
        let parts = Self.ed25519Token.split(separator: ".").map(String.init)
        let input = Array((parts[0] + "." + parts[1]).utf8)
        let signature = try XCTUnwrap(Base64URL.decode(parts[2]))
        XCTAssertEqual(Base64URL.decode(parts[1]).map { String(decoding: $0, as: UTF8.self) }, "Example of Ed25519 signing")
        for algorithm in [JWSAlgorithm.eddsa, .ed25519] {
            XCTAssertTrue(input.withUnsafeBytes { key.isValidSignature(signature, for: $0, algorithm: algorithm) }, "\(algorithm)")
        }
        var flipped = signature
        flipped[5] ^= 0x10
        XCTAssertFalse(input.withUnsafeBytes { key.isValidSignature(flipped, for: $0, algorithm: .eddsa) })
        var tamperedInput = input
        tamperedInput[tamperedInput.count - 1] ^= 0x01
        XCTAssertFalse(tamperedInput.withUnsafeBytes { key.isValidSignature(signature, for: $0, algorithm: .eddsa) })
        XCTAssertFalse(input.withUnsafeBytes { key.isValidSignature(signature, for: $0, algorithm: .es256) })
        // As a whole token it is a valid signature over a payload that is not a claims set.
        let verifier = try verifier(.eddsa, jwk: Self.ed25519Key)
        XCTAssertEqual(verifier.verify(Self.ed25519Token, now: 0).outcome, "malformed_token")
    }
}
