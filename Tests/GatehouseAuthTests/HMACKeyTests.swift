import Crypto
import GatehouseCore
import XCTest
@testable import GatehouseAuth

/// The precomputed-state HMAC (``HMACKey``) against swift-crypto's `HMAC` and RFC 4231.
final class HMACKeyTests: XCTestCase {
    static let keyLengths = [1, 31, 32, 33, 64, 65, 127, 128, 129, 200]
    /// Around the SHA-256 (64) and SHA-384/512 (128) block sizes and their length-padding limits.
    static let messageLengths = [0, 1, 31, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 200, 1000]

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
    }

    /// swift-crypto's HMAC of `message` with `key`, for `hash`.
    static func reference(_ hash: JWSAlgorithm.Hash, key: [UInt8], message: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch hash {
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha384: return Array(HMAC<SHA384>.authenticationCode(for: message, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
    }

    /// Our HMAC of `message`, computed from the precomputed states.
    static func computed(_ hash: JWSAlgorithm.Hash, key: HMACKey, message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { message in
            switch hash {
            case .sha256: return Array(key.sha256.authenticationCode(for: message))
            case .sha384: return Array(key.sha384.authenticationCode(for: message))
            case .sha512: return Array(key.sha512.authenticationCode(for: message))
            }
        }
    }

    static func isValid(_ mac: [UInt8], _ hash: JWSAlgorithm.Hash, key: HMACKey, message: [UInt8]) -> Bool {
        mac.withUnsafeBytes { mac in message.withUnsafeBytes { key.isValidAuthenticationCode(mac, for: $0, hash: hash) } }
    }

    func testMatchesSwiftCryptoHMACForRandomKeysAndMessages() {
        let hashes: [(JWSAlgorithm.Hash, JWSAlgorithm)] = [(.sha256, .hs256), (.sha384, .hs384), (.sha512, .hs512)]
        for keyLength in Self.keyLengths + [0] {
            let secret = Self.randomBytes(keyLength)
            let key = HMACKey(secret: secret)
            let jwk = JWK(hmacSecret: secret)
            for messageLength in Self.messageLengths {
                let message = Self.randomBytes(messageLength)
                for (hash, algorithm) in hashes {
                    let label = "\(algorithm) key \(keyLength) bytes \(Self.hex(secret)), message \(Self.hex(message))"
                    let expected = Self.reference(hash, key: secret, message: message)
                    XCTAssertEqual(Self.computed(hash, key: key, message: message), expected, label)
                    XCTAssertTrue(Self.isValid(expected, hash, key: key, message: message), label)
                    XCTAssertTrue(message.withUnsafeBytes { jwk.isValidSignature(expected, for: $0, algorithm: algorithm) },
                                  "JWK \(label)")
                    for position in [0, expected.count / 2, expected.count - 1] {
                        var flipped = expected
                        flipped[position] ^= 0x01
                        XCTAssertFalse(Self.isValid(flipped, hash, key: key, message: message), "flipped \(position): \(label)")
                    }
                    XCTAssertFalse(Self.isValid(Array(expected.dropLast()), hash, key: key, message: message), "short: \(label)")
                    XCTAssertFalse(Self.isValid(expected + [0], hash, key: key, message: message), "long: \(label)")
                    XCTAssertFalse(Self.isValid([], hash, key: key, message: message), "empty: \(label)")
                    if !message.isEmpty {
                        var tampered = message
                        tampered[tampered.count - 1] ^= 0x80
                        XCTAssertFalse(Self.isValid(expected, hash, key: key, message: tampered), "tampered: \(label)")
                    }
                }
                // A MAC of one hash never passes for another (lengths differ).
                let mac256 = Self.reference(.sha256, key: secret, message: message)
                XCTAssertFalse(Self.isValid(mac256, .sha512, key: key, message: message))
                XCTAssertFalse(Self.isValid(mac256 + mac256, .sha512, key: key, message: message))
            }
        }
    }

    /// RFC 4231 §4.2–4.8: HMAC-SHA-256/384/512 test cases 1–7.
    func testRFC4231TestVectors() {
        let longKey = [UInt8](repeating: 0xAA, count: 131)
        let cases: [(name: String, key: [UInt8], data: [UInt8], sha256: String, sha384: String, sha512: String)] = [
            ("1", [UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
             "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
             "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
            ("2", Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
             "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
             "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
            ("3", [UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
             "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
             "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"),
            ("4", Array(1...25), [UInt8](repeating: 0xCD, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
             "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
             "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"),
            // Case 5 publishes only the first 128 bits of each MAC.
            ("5", [UInt8](repeating: 0x0C, count: 20), Array("Test With Truncation".utf8),
             "a3b6167473100ee06e0c796c2955552b",
             "3abf34c3503b2a23a46efc619baef897",
             "415fad6271580a531d4179bc891d87a6"),
            ("6", longKey, Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
             "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
             "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
            ("7", longKey,
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
             "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
             "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"),
        ]
        for row in cases {
            let key = HMACKey(secret: row.key)
            for (hash, expectedHex) in [(JWSAlgorithm.Hash.sha256, row.sha256), (.sha384, row.sha384), (.sha512, row.sha512)] {
                let expected = Self.bytes(hex: expectedHex)
                let mac = Self.computed(hash, key: key, message: row.data)
                XCTAssertEqual(Array(mac.prefix(expected.count)), expected, "case \(row.name) \(hash)")
                XCTAssertEqual(mac, Self.reference(hash, key: row.key, message: row.data), "case \(row.name) \(hash)")
                if row.name == "5" {
                    // A truncated MAC is never accepted: the length must be the hash's.
                    XCTAssertFalse(Self.isValid(expected, hash, key: key, message: row.data), "case 5 truncated \(hash)")
                    XCTAssertTrue(Self.isValid(mac, hash, key: key, message: row.data), "case 5 full \(hash)")
                } else {
                    XCTAssertTrue(Self.isValid(expected, hash, key: key, message: row.data), "case \(row.name) \(hash)")
                }
            }
        }
    }

    func testConstantTimeEqualsComparesWholeBuffersOfEqualLength() {
        func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
            a.withUnsafeBytes { a in b.withUnsafeBytes { constantTimeEquals(a, $0) } }
        }
        XCTAssertTrue(equal([], []))
        XCTAssertTrue(equal([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(equal([1, 2, 3], [1, 2]))
        XCTAssertFalse(equal([1, 2], [1, 2, 3]))
        XCTAssertFalse(equal([0, 2, 3], [1, 2, 3]))
        XCTAssertFalse(equal([1, 2, 3], [1, 2, 0x83]))
    }

    /// HS256/384/512 tokens end to end, with secrets around the block sizes, and signatures cut
    /// short, lengthened or of another HMAC size refused.
    func testHMACTokensOfEveryHashVerify() throws {
        let claims = #"{"iss":"https://h.test","sub":"s","exp":4102444800}"#
        for length in [1, 32, 64, 65, 128, 129, 200] {
            let secret = Self.randomBytes(length)
            let verifier = JWTVerifier(issuers: [JWTIssuerConfig(
                name: "h", issuer: "https://h.test", audiences: nil, algorithms: [.hs256, .hs384, .hs512],
                keys: JWKSet(keys: [JWK(hmacSecret: secret)]))])
            for (algorithm, hash) in [(JWSAlgorithm.hs256, JWSAlgorithm.Hash.sha256), (.hs384, .sha384), (.hs512, .sha512)] {
                let input = TestTokens.base64URL(#"{"alg":"\#(algorithm)"}"#) + "." + TestTokens.base64URL(claims)
                let mac = Self.reference(hash, key: secret, message: Array(input.utf8))
                let label = "\(algorithm), secret \(length) bytes"
                XCTAssertEqual(verifier.verify(input + "." + TestTokens.base64URL(mac), now: 1_750_000_000).outcome, "ok", label)
                XCTAssertEqual(verifier.verify(input + "." + TestTokens.base64URL(mac.dropLast()), now: 1_750_000_000).outcome,
                               "bad_signature", "short: \(label)")
                XCTAssertEqual(verifier.verify(input + "." + TestTokens.base64URL(mac + [0]), now: 1_750_000_000).outcome,
                               "bad_signature", "long: \(label)")
                XCTAssertEqual(verifier.verify(input + ".", now: 1_750_000_000).outcome, "bad_signature", "empty: \(label)")
                let other = Self.reference(hash == .sha256 ? .sha512 : .sha256, key: secret, message: Array(input.utf8))
                XCTAssertEqual(verifier.verify(input + "." + TestTokens.base64URL(other), now: 1_750_000_000).outcome,
                               "bad_signature", "other hash: \(label)")
            }
        }
    }
}
