import Crypto
import XCTest
@testable import GatehouseAuth

final class JWKSetTests: XCTestCase {
    static let rsaN = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
    static let n1024 = TestTokens.base64URL([0xC1] + [UInt8](repeating: 0x5A, count: 127))
    static let x256 = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
    static let y256 = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    static let ed = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

    func testDocumentsThatAreNotJWKSetsAreErrorsThatSayWhy() {
        let table: [(name: String, json: String, error: String)] = [
            ("not JSON", "{keys: []}", "not valid JSON: expected a member name at byte 1"),
            ("an array", "[]", #"a JWK Set must be a JSON object with a "keys" array"#),
            ("a single JWK", #"{"kty":"oct","k":"AAAA"}"#, #"this is a single JWK, not a JWK Set: wrap it as {"keys": [ ... ]}"#),
            ("no keys", "{}", #"missing "keys" array"#),
            ("keys not an array", #"{"keys":{}}"#, #""keys" must be an array"#),
            ("duplicate members", #"{"keys":[],"keys":[]}"#, #"not valid JSON: duplicate member name "keys" at byte 11"#),
        ]
        for row in table {
            XCTAssertThrowsError(try JWKSet(jwksJSON: row.json), row.name) { error in
                XCTAssertEqual("\(error)", row.error, row.name)
            }
        }
    }

    func testUnusableKeysAreSkippedWithAWarningThatSaysWhy() throws {
        let table: [(name: String, jwk: String, warning: String)] = [
            ("1024-bit RSA", #"{"kty":"RSA","n":"\#(Self.n1024)","e":"AQAB"}"#, "RSA key is 1024 bits; at least 2048 are required"),
            ("encryption key", #"{"kty":"RSA","use":"enc","n":"\#(Self.rsaN)","e":"AQAB"}"#, #""use" is "enc", not "sig""#),
            ("key_ops without verify", #"{"kty":"RSA","key_ops":["encrypt"],"n":"\#(Self.rsaN)","e":"AQAB"}"#,
             #""key_ops" does not include "verify""#),
            ("unknown kty", #"{"kty":"DSA"}"#, #""kty" "DSA" is not supported (RSA, EC, OKP, oct)"#),
            ("missing kty", #"{"n":"AQAB"}"#, #"missing "kty""#),
            ("missing n", #"{"kty":"RSA","e":"AQAB"}"#, #"missing "n""#),
            ("padded n", #"{"kty":"RSA","n":"AQAB==","e":"AQAB"}"#, #""n" is not unpadded base64url"#),
            ("P-521", #"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#, #"EC curve "P-521" is not supported (P-256, P-384)"#),
            ("short P-256 coordinate", #"{"kty":"EC","crv":"P-256","x":"AAAA","y":"\#(Self.y256)"}"#,
             "P-256 coordinates must be 32 bytes each"),
            ("P-256 point off the curve", #"{"kty":"EC","crv":"P-256","x":"\#(Self.x256)","y":"\#(Self.x256)"}"#,
             "the P-256 point is not on the curve"),
            ("P-384 with P-256 coordinates", #"{"kty":"EC","crv":"P-384","x":"\#(Self.x256)","y":"\#(Self.y256)"}"#,
             "P-384 coordinates must be 48 bytes each"),
            ("X25519", #"{"kty":"OKP","crv":"X25519","x":"\#(Self.ed)"}"#, #"OKP curve "X25519" is not supported (Ed25519)"#),
            ("short Ed25519", #"{"kty":"OKP","crv":"Ed25519","x":"AAAA"}"#, "an Ed25519 public key must be 32 bytes"),
            ("empty oct", #"{"kty":"oct","k":""}"#, #""k" is not unpadded base64url"#),
            ("RSA key with an EC alg", #"{"kty":"RSA","alg":"ES256","n":"\#(Self.rsaN)","e":"AQAB"}"#,
             #""alg" ES256 does not fit a key of type RSA"#),
            ("oct key with an RSA alg", #"{"kty":"oct","alg":"RS256","k":"AAAA"}"#, #""alg" RS256 does not fit a key of type oct"#),
            ("alg none", #"{"kty":"oct","alg":"none","k":"AAAA"}"#, #""alg" "none" is not a supported signature algorithm"#),
            ("kid not a string", #"{"kty":"oct","kid":7,"k":"AAAA"}"#, #""kid" must be a string"#),
            ("not an object", #""a string""#, "a JWK must be a JSON object"),
        ]
        for row in table {
            let good = #"{"kty":"OKP","crv":"Ed25519","kid":"good","x":"\#(Self.ed)"}"#
            let set = try JWKSet(jwksJSON: #"{"keys":[\#(good),\#(row.jwk)]}"#)
            XCTAssertEqual(set.keys.map(\.kid), ["good"], row.name)
            XCTAssertEqual(set.warnings, ["keys[1]: skipped: \(row.warning)"], row.name)
        }
    }

    func testASetWithNoUsableKeyWarnsSo() throws {
        let set = try JWKSet(jwksJSON: #"{"keys":[{"kty":"RSA","kid":"k","use":"enc","n":"AQAB","e":"AQAB"}]}"#)
        XCTAssertTrue(set.isEmpty)
        XCTAssertEqual(set.warnings, [#"keys[0] (kid "k"): skipped: "use" is "enc", not "sig""#,
                                      "the JWK Set has no usable signature keys"])
    }

    func testPrivateKeyMaterialIsIgnoredWithAWarning() throws {
        let set = try JWKSet(jwksJSON: #"{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"\#(Self.x256)","y":"\#(Self.y256)","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}"#)
        XCTAssertEqual(set.keys.count, 1)
        XCTAssertEqual(set.warnings, [#"keys[0] (kid "e"): contains private key material (d); only the public key is used — publish public keys only"#])
    }

    func testKeysKeepKidAlgUseAndSize() throws {
        let set = try JWKSet(jwksJSON: #"""
            {"keys":[{"kty":"RSA","kid":"r","alg":"PS384","use":"sig","n":"\#(Self.rsaN)","e":"AQAB","x5c":["ignored"]},
                     {"kty":"EC","crv":"P-256","x":"\#(Self.x256)","y":"\#(Self.y256)"},
                     {"kty":"oct","kid":"h","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}
            """#)
        XCTAssertEqual(set.keys.map(\.kid), ["r", nil, "h"])
        XCTAssertEqual(set.keys.map(\.alg), [.ps384, nil, nil])
        XCTAssertEqual(set.keys.map(\.use), ["sig", nil, nil])
        XCTAssertEqual(set.keys.map(\.keyType), [.rsa, .ec, .oct])
        XCTAssertEqual(set.keys.map(\.sizeInBits), [2048, 256, 256])
        XCTAssertEqual(set.warnings, [])
    }

    func testEachKeyTypeVerifiesOnlyItsOwnAlgorithmFamily() throws {
        let rsa = try JWK(json: try JSONParser.parse(#"{"kty":"RSA","n":"\#(Self.rsaN)","e":"AQAB"}"#))
        let p256 = try JWK(json: try JSONParser.parse(#"{"kty":"EC","crv":"P-256","x":"\#(Self.x256)","y":"\#(Self.y256)"}"#))
        let p384Key = P384.Signing.PrivateKey().publicKey.rawRepresentation
        let p384 = try JWK(json: try JSONParser.parse(#"{"kty":"EC","crv":"P-384","x":"\#(TestTokens.base64URL(p384Key.prefix(48)))","y":"\#(TestTokens.base64URL(p384Key.suffix(48)))"}"#))
        let ed = try JWK(json: try JSONParser.parse(#"{"kty":"OKP","crv":"Ed25519","x":"\#(Self.ed)"}"#))
        let oct = JWK(hmacSecret: Array(repeating: 7, count: 32))
        let psOnly = try JWK(json: try JSONParser.parse(#"{"kty":"RSA","alg":"PS256","n":"\#(Self.rsaN)","e":"AQAB"}"#))
        let edOnly = try JWK(json: try JSONParser.parse(#"{"kty":"OKP","crv":"Ed25519","alg":"Ed25519","x":"\#(Self.ed)"}"#))
        let table: [(name: String, key: JWK, accepts: Set<JWSAlgorithm>)] = [
            ("RSA", rsa, [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]),
            ("P-256", p256, [.es256]),
            ("P-384", p384, [.es384]),
            ("Ed25519", ed, [.eddsa, .ed25519]),
            ("oct", oct, [.hs256, .hs384, .hs512]),
            ("RSA with alg PS256", psOnly, [.ps256]),
            ("Ed25519 with alg Ed25519", edOnly, [.eddsa, .ed25519]),
        ]
        for row in table {
            XCTAssertEqual(Set(JWSAlgorithm.allCases.filter(row.key.canVerify)), row.accepts, row.name)
        }
    }

    func testAnEmptyHMACSecretIsRefused() {
        XCTAssertThrowsError(try JWKSet(hmacSecret: [])) { error in
            XCTAssertEqual("\(error)", "the HMAC secret is empty")
        }
        XCTAssertEqual(try JWKSet(hmacSecret: [1]).keys.map(\.keyType), [.oct])
    }

    func testIssuerWarningsFlagShortSecretsAndAlgorithmsWithoutKeys() throws {
        let short = JWTIssuerConfig(name: "local", issuer: nil, audiences: nil, algorithms: [.hs256, .hs512, .rs256],
                                    keys: try JWKSet(hmacSecret: Array(repeating: 1, count: 40)))
        XCTAssertEqual(short.warnings, [
            #"issuer "local": the HMAC secret is 40 bytes; HS512 wants at least 64 (RFC 7518 §3.2)"#,
            #"issuer "local": algorithm RS256 is allowed but no key can verify it"#,
        ])
        let fine = JWTIssuerConfig(name: "ok", issuer: nil, audiences: nil, algorithms: [.hs256],
                                   keys: try JWKSet(hmacSecret: Array(repeating: 1, count: 32)))
        XCTAssertEqual(fine.warnings, [])
    }
}
