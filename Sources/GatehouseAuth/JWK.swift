import Crypto
import _CryptoExtras

/// One public verification key (RFC 7517 §4): an RSA, EC (P-256, P-384), OKP (Ed25519) or
/// symmetric (`oct`) key with its `kid`, `alg` and `use`.
///
/// A key verifies only the algorithm family of its type — an RSA, EC or OKP key never verifies
/// an HMAC, and an `oct` key never verifies RSA, ECDSA or EdDSA (RFC 8725 §3.1: no key-type
/// confusion). When the key names its own `alg`, only that algorithm is accepted with it.
public struct JWK: Sendable {
    /// The JWK `kty` values gatehouse understands.
    public enum KeyType: String, Sendable, Equatable {
        case rsa = "RSA", ec = "EC", okp = "OKP", oct = "oct"
    }

    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case hmac(HMACKey)
    }

    /// The key id (`kid`), matched against a token header's `kid`.
    public let kid: String?
    /// The only algorithm this key may verify, when the JWK names one (`alg`).
    public let alg: JWSAlgorithm?
    /// The intended use (`use`); always `sig` or absent for a key that was kept.
    public let use: String?
    /// The key type (`kty`).
    public let keyType: KeyType
    /// The modulus size for RSA, the curve size for EC and OKP, the secret length for `oct`.
    public let sizeInBits: Int
    let material: Material

    /// An HMAC key from raw secret bytes (SPEC §2 `secret_file`, `secret_env`).
    public init(hmacSecret secret: [UInt8], kid: String? = nil, alg: JWSAlgorithm? = nil) {
        self.kid = kid
        self.alg = alg
        self.use = nil
        self.keyType = .oct
        self.sizeInBits = secret.count * 8
        self.material = .hmac(HMACKey(secret: secret))
    }

    init(kid: String?, alg: JWSAlgorithm?, use: String?, keyType: KeyType, sizeInBits: Int, material: Material) {
        self.kid = kid
        self.alg = alg
        self.use = use
        self.keyType = keyType
        self.sizeInBits = sizeInBits
        self.material = material
    }

    /// True when this key may verify a token signed with `algorithm`: the key type matches the
    /// algorithm's family (and curve), and the key's own `alg`, when present, is that algorithm.
    public func canVerify(_ algorithm: JWSAlgorithm) -> Bool {
        if let alg, alg.canonical != algorithm.canonical { return false }
        switch (material, algorithm.family) {
        case (.hmac, .hmac), (.rsa, .rsaPKCS1), (.rsa, .rsaPSS), (.p256, .ecdsaP256), (.p384, .ecdsaP384),
             (.ed25519, .ed25519):
            return true
        default:
            return false
        }
    }

    /// Checks `signature` over the JWS signing input with `algorithm`. False for any key type
    /// that does not match the algorithm, and for signatures of the wrong length.
    func isValidSignature(_ signature: [UInt8], for input: UnsafeRawBufferPointer, algorithm: JWSAlgorithm) -> Bool {
        signature.withUnsafeBytes { isValidSignature($0, for: input, algorithm: algorithm) }
    }

    /// Checks `signature` over the JWS signing input with `algorithm`. False for any key type
    /// that does not match the algorithm, and for signatures of the wrong length.
    func isValidSignature(_ signature: UnsafeRawBufferPointer, for input: UnsafeRawBufferPointer,
                          algorithm: JWSAlgorithm) -> Bool {
        guard canVerify(algorithm), !signature.isEmpty else { return false }
        switch material {
        case .hmac(let key):
            // Precomputed inner and outer states; constant-time comparison, length must match.
            return key.isValidAuthenticationCode(signature, for: input, hash: algorithm.hash)
        case .rsa(let key):
            // PSS: MGF1 with the same hash, salt as long as the hash (RFC 7518 §3.5).
            let padding: _RSA.Signing.Padding = algorithm.family == .rsaPSS ? .PSS : .insecurePKCS1v1_5
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm.hash {
            case .sha256: return key.isValidSignature(rsaSignature, for: SHA256.hash(data: input), padding: padding)
            case .sha384: return key.isValidSignature(rsaSignature, for: SHA384.hash(data: input), padding: padding)
            case .sha512: return key.isValidSignature(rsaSignature, for: SHA512.hash(data: input), padding: padding)
            }
        case .p256(let key):
            // JWS carries raw r‖s of exactly the curve size (RFC 7518 §3.4), never DER.
            guard signature.count == 64,
                  let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: SHA256.hash(data: input))
        case .p384(let key):
            guard signature.count == 96,
                  let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: SHA384.hash(data: input))
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: input)
        }
    }
}
