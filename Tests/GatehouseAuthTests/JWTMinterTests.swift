import Crypto
import GatehouseCore
import XCTest
@testable import GatehouseAuth

/// `gatehouse test`'s token minting (SPEC §15.1): every token it makes verifies with the
/// verifier `run` uses, and a key never signs outside its family.
final class JWTMinterTests: XCTestCase {
    static let now: Int64 = 1_750_000_000
    static let claims = JSONObject([("iss", "https://t.test"), ("sub", "alice"), ("exp", .number(JSONNumber(now + 60))),
                                    ("roles", ["a", "b"]), ("note", "quote \" and \\ and \n")])

    private func verify(_ token: String, keys: JWKSet, algorithms: Set<JWSAlgorithm>) -> Result<VerifiedToken, Reason> {
        let verifier = JWTVerifier(issuers: [JWTIssuerConfig(name: "t", issuer: "https://t.test", audiences: nil,
                                                             algorithms: algorithms, keys: keys)])
        return verifier.verify(token, now: Self.now)
    }

    func testHMACTokensVerifyWithTheSameSecret() throws {
        let secret = JWK(hmacSecret: Array("a-secret-of-thirty-two-bytes!!!!".utf8))
        for algorithm in [JWSAlgorithm.hs256, .hs384, .hs512] {
            let token = try XCTUnwrap(JWTMinter.mint(claims: Self.claims, algorithm: algorithm, signer: .hmac(secret)))
            let verified = try verify(token, keys: JWKSet(keys: [secret]), algorithms: [algorithm]).get()
            XCTAssertEqual(verified.subject, "alice")
            XCTAssertEqual(verified.roles, ["a", "b"])
            XCTAssertEqual(verified.claims["note"], .string("quote \" and \\ and \n"))
        }
        XCTAssertNil(JWTMinter.mint(claims: Self.claims, algorithm: .rs256, signer: .hmac(secret)))
        XCTAssertEqual(JWTMinter.algorithms(for: .hmac(secret)), [.hs256, .hs384, .hs512])
    }

    func testPrivateKeysSignWhatTheirPublicHalfVerifies() throws {
        let pems: [(String, [JWSAlgorithm])] = [
            (P256.Signing.PrivateKey().pemRepresentation, [.es256]),
            (P384.Signing.PrivateKey().pemRepresentation, [.es384]),
            (Curve25519.Signing.PrivateKey().pemRepresentation, [.eddsa, .ed25519]),
        ]
        for (pem, algorithms) in pems {
            let key = try TokenSigningKey(pem: pem)
            XCTAssertEqual(JWTMinter.algorithms(for: .key(key)), algorithms)
            for algorithm in algorithms {
                let token = try XCTUnwrap(JWTMinter.mint(claims: Self.claims, algorithm: algorithm, signer: .key(key)))
                XCTAssertEqual(try verify(token, keys: JWKSet(keys: [key.publicJWK]), algorithms: [algorithm]).get().subject, "alice")
            }
            XCTAssertNil(JWTMinter.mint(claims: Self.claims, algorithm: .hs256, signer: .key(key)))
        }
    }

    func testPublicKeysAndGarbageAreRefused() {
        let publicPEM = P256.Signing.PrivateKey().publicKey.pemRepresentation
        XCTAssertThrowsError(try TokenSigningKey(pem: publicPEM))
        XCTAssertThrowsError(try TokenSigningKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
        XCTAssertThrowsError(try TokenSigningKey(pem: ""))
    }
}
