import Crypto
import _CryptoExtras
import Foundation
import GatehouseCore

/// A private signing key read from PEM, for `gatehouse test` (SPEC §15.1): its public half
/// stands in for the issuer's keys while the test runs, so tokens verify without a JWKS.
/// Never used by `run`.
public struct TokenSigningKey: Sendable {
    enum Material: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    let material: Material

    /// Why a key file was refused.
    public struct PEMError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// The key in `pem`: an RSA (PKCS#1 or PKCS#8), EC P-256 or P-384 (SEC1 or PKCS#8) or
    /// Ed25519 (PKCS#8) private key. A public key, or anything else, is refused.
    public init(pem: String) throws(PEMError) {
        if pem.contains("PUBLIC KEY-----") {
            throw PEMError(description: "holds a public key; a private key is needed to sign test tokens")
        }
        if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem) {
            material = .rsa(key)
        } else if let key = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem) {
            // Under 2048 bits: usable for a test, though the verifier refuses such public keys.
            material = .rsa(key)
        } else if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            material = .p256(key)
        } else if let key = try? P384.Signing.PrivateKey(pemRepresentation: pem) {
            material = .p384(key)
        } else if let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) {
            material = .ed25519(key)
        } else {
            throw PEMError(description: "not a PEM private key of a supported type (RSA, EC P-256, EC P-384, Ed25519)")
        }
    }

    /// What the key is, for messages.
    public var kindName: String {
        switch material {
        case .rsa: return "an RSA key"
        case .p256: return "an EC P-256 key"
        case .p384: return "an EC P-384 key"
        case .ed25519: return "an Ed25519 key"
        }
    }

    /// The public half as a verification key (no `kid`, no `alg`: it verifies whatever its type
    /// does).
    public var publicJWK: JWK {
        switch material {
        case .rsa(let key):
            return JWK(kid: nil, alg: nil, use: nil, keyType: .rsa, sizeInBits: key.keySizeInBits,
                       material: .rsa(key.publicKey))
        case .p256(let key):
            return JWK(kid: nil, alg: nil, use: nil, keyType: .ec, sizeInBits: 256, material: .p256(key.publicKey))
        case .p384(let key):
            return JWK(kid: nil, alg: nil, use: nil, keyType: .ec, sizeInBits: 384, material: .p384(key.publicKey))
        case .ed25519(let key):
            return JWK(kid: nil, alg: nil, use: nil, keyType: .okp, sizeInBits: 256, material: .ed25519(key.publicKey))
        }
    }

    /// The signature of `input` with `algorithm` as JWS carries it, or nil when the key cannot
    /// make it (another family).
    func sign(_ input: [UInt8], algorithm: JWSAlgorithm) -> [UInt8]? {
        switch (material, algorithm.family) {
        case (.rsa(let key), .rsaPKCS1), (.rsa(let key), .rsaPSS):
            let padding: _RSA.Signing.Padding = algorithm.family == .rsaPSS ? .PSS : .insecurePKCS1v1_5
            let signature: _RSA.Signing.RSASignature?
            switch algorithm.hash {
            case .sha256: signature = try? key.signature(for: SHA256.hash(data: input), padding: padding)
            case .sha384: signature = try? key.signature(for: SHA384.hash(data: input), padding: padding)
            case .sha512: signature = try? key.signature(for: SHA512.hash(data: input), padding: padding)
            }
            return signature.map { [UInt8]($0.rawRepresentation) }
        case (.p256(let key), .ecdsaP256):
            return (try? key.signature(for: SHA256.hash(data: input))).map { [UInt8]($0.rawRepresentation) }
        case (.p384(let key), .ecdsaP384):
            return (try? key.signature(for: SHA384.hash(data: input))).map { [UInt8]($0.rawRepresentation) }
        case (.ed25519(let key), .ed25519):
            return (try? key.signature(for: input)).map { [UInt8]($0) }
        default:
            return nil
        }
    }
}

/// Makes compact JWS tokens for `gatehouse test` (SPEC §15.1). Not on any request path.
public enum JWTMinter {
    /// The key an issuer's token is signed with: its HMAC secret, or a private key.
    public enum Signer: Sendable {
        case hmac(JWK)
        case key(TokenSigningKey)
    }

    /// The algorithms `signer` can sign, in the order a test prefers them.
    public static func algorithms(for signer: Signer) -> [JWSAlgorithm] {
        let preference: [JWSAlgorithm] = [.hs256, .hs384, .hs512, .rs256, .rs384, .rs512, .ps256, .ps384, .ps512,
                                          .es256, .es384, .eddsa, .ed25519]
        switch signer {
        case .hmac(let key): return preference.filter { key.canVerify($0) && $0.family == .hmac }
        case .key(let key): return preference.filter { key.publicJWK.canVerify($0) }
        }
    }

    /// `header.payload.signature` with `{"alg":…,"typ":"JWT"}` and `claims` as the payload; nil
    /// when `signer` cannot sign `algorithm`.
    public static func mint(claims: JSONObject, algorithm: JWSAlgorithm, signer: Signer) -> String? {
        let header = JSONValue.object(JSONObject([("alg", .string(algorithm.rawValue)), ("typ", .string("JWT"))]))
        let input = encode(Array(serialize(header).utf8)) + "." + encode(Array(serialize(.object(claims)).utf8))
        let bytes = Array(input.utf8)
        let signature: [UInt8]?
        switch signer {
        case .hmac(let key):
            guard case .hmac(let state) = key.material, algorithm.family == .hmac else { return nil }
            signature = bytes.withUnsafeBytes { message -> [UInt8] in
                switch algorithm.hash {
                case .sha256: return Array(state.sha256.authenticationCode(for: message))
                case .sha384: return Array(state.sha384.authenticationCode(for: message))
                case .sha512: return Array(state.sha512.authenticationCode(for: message))
                }
            }
        case .key(let key):
            signature = key.sign(bytes, algorithm: algorithm)
        }
        guard let signature else { return nil }
        return input + "." + encode(signature)
    }

    /// Base64url without padding (RFC 7515 §2).
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Compact JSON (RFC 8259), members in their order.
    public static func serialize(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n.description
        case .string(let s): return quote(s)
        case .array(let items): return "[" + items.map(serialize).joined(separator: ",") + "]"
        case .object(let object):
            return "{" + object.members.map { quote($0.name) + ":" + serialize($0.value) }.joined(separator: ",") + "}"
        }
    }

    private static func quote(_ text: String) -> String {
        var out = ""
        JSONText.appendString(text, to: &out)
        return out
    }
}
