import Crypto
import _CryptoExtras

/// Why one JWK could not be used; the message says what is wrong with it.
public struct JWKError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension JWK {
    /// A public key from its JWK object (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
    ///
    /// Refused: an unknown or unsupported `kty`/`crv`, a `use` other than `sig`, `key_ops`
    /// without `verify`, an `alg` that is not a supported signature algorithm for the key type,
    /// RSA moduli under 2048 bits, EC coordinates of the wrong length or off the curve.
    /// Private members (`d`, `p`, …) are ignored; ``JWKSet`` warns about them.
    public init(json: JSONValue) throws(JWKError) {
        guard case .object(let object) = json else { throw JWKError("a JWK must be a JSON object") }
        let kty = try Self.string(object, "kty", required: true)!
        let kid = try Self.string(object, "kid", required: false)
        let use = try Self.string(object, "use", required: false)
        if let use, use != "sig" { throw JWKError("\"use\" is \"\(use)\", not \"sig\"") }
        if let ops = object["key_ops"] {
            guard case .array(let list) = ops else { throw JWKError("\"key_ops\" must be an array of strings") }
            if !list.contains(.string("verify")) { throw JWKError("\"key_ops\" does not include \"verify\"") }
        }
        var alg: JWSAlgorithm? = nil
        if let name = try Self.string(object, "alg", required: false) {
            guard let parsed = JWSAlgorithm(rawValue: name) else {
                throw JWKError("\"alg\" \"\(name)\" is not a supported signature algorithm")
            }
            alg = parsed
        }

        let keyType: KeyType
        let material: Material
        let bits: Int
        switch kty {
        case "RSA":
            keyType = .rsa
            let n = try Self.bytes(object, "n")
            let e = try Self.bytes(object, "e")
            bits = Self.bitLength(n)
            guard bits >= 2048 else { throw JWKError("RSA key is \(bits) bits; at least 2048 are required") }
            do {
                material = .rsa(try _RSA.Signing.PublicKey(n: n, e: e))
            } catch {
                throw JWKError("invalid RSA public key (n, e)")
            }
        case "EC":
            keyType = .ec
            let crv = try Self.string(object, "crv", required: true)!
            let x = try Self.bytes(object, "x")
            let y = try Self.bytes(object, "y")
            switch crv {
            case "P-256":
                bits = 256
                guard x.count == 32, y.count == 32 else { throw JWKError("P-256 coordinates must be 32 bytes each") }
                guard let key = try? P256.Signing.PublicKey(rawRepresentation: x + y) else {
                    throw JWKError("the P-256 point is not on the curve")
                }
                material = .p256(key)
            case "P-384":
                bits = 384
                guard x.count == 48, y.count == 48 else { throw JWKError("P-384 coordinates must be 48 bytes each") }
                guard let key = try? P384.Signing.PublicKey(rawRepresentation: x + y) else {
                    throw JWKError("the P-384 point is not on the curve")
                }
                material = .p384(key)
            default:
                throw JWKError("EC curve \"\(crv)\" is not supported (P-256, P-384)")
            }
        case "OKP":
            keyType = .okp
            let crv = try Self.string(object, "crv", required: true)!
            guard crv == "Ed25519" else { throw JWKError("OKP curve \"\(crv)\" is not supported (Ed25519)") }
            let x = try Self.bytes(object, "x")
            guard x.count == 32, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else {
                throw JWKError("an Ed25519 public key must be 32 bytes")
            }
            bits = 256
            material = .ed25519(key)
        case "oct":
            keyType = .oct
            let k = try Self.bytes(object, "k")
            bits = k.count * 8
            material = .hmac(HMACKey(secret: k))
        default:
            throw JWKError("\"kty\" \"\(kty)\" is not supported (RSA, EC, OKP, oct)")
        }
        self.init(kid: kid, alg: alg, use: use, keyType: keyType, sizeInBits: bits, material: material)
        if let alg, !canVerify(alg) {
            throw JWKError("\"alg\" \(alg) does not fit a key of type \(kty)")
        }
    }

    private static func string(_ object: JSONObject, _ name: String, required: Bool) throws(JWKError) -> String? {
        guard let value = object[name] else {
            if required { throw JWKError("missing \"\(name)\"") }
            return nil
        }
        guard case .string(let string) = value else { throw JWKError("\"\(name)\" must be a string") }
        return string
    }

    private static func bytes(_ object: JSONObject, _ name: String) throws(JWKError) -> [UInt8] {
        let text = try string(object, name, required: true)!
        guard let bytes = Base64URL.decode(text), !bytes.isEmpty else {
            throw JWKError("\"\(name)\" is not unpadded base64url")
        }
        return bytes
    }

    private static func bitLength(_ bigEndian: [UInt8]) -> Int {
        guard let first = bigEndian.firstIndex(where: { $0 != 0 }) else { return 0 }
        return (bigEndian.count - first - 1) * 8 + (8 - bigEndian[first].leadingZeroBitCount)
    }
}
