/// One trusted token issuer (SPEC §2 `jwt.issuers[]`): what its tokens must say and the keys
/// that verify them. Issuers are providers; routes refer to them by ``name``.
public struct JWTIssuerConfig: Sendable {
    /// The name routes use in `issuers: [...]`.
    public let name: String
    /// The required `iss` value; nil means `iss` is not checked (allowed only for a sole issuer).
    public let issuer: String?
    /// `aud` must contain one of these; nil means `aud` is not checked.
    public let audiences: [String]?
    /// The allow-list of header `alg` values. `EdDSA` and `Ed25519` admit each other.
    public let algorithms: Set<JWSAlgorithm>
    /// The verification keys.
    public let keys: JWKSet

    public init(name: String, issuer: String?, audiences: [String]?, algorithms: Set<JWSAlgorithm>, keys: JWKSet) {
        self.name = name
        self.issuer = issuer
        self.audiences = audiences
        var algorithms = algorithms
        if algorithms.contains(.eddsa) || algorithms.contains(.ed25519) {
            algorithms.formUnion([.eddsa, .ed25519])
        }
        self.algorithms = algorithms
        self.keys = keys
    }

    /// The same issuer with another key set (a refreshed JWKS).
    public func replacingKeys(_ keys: JWKSet) -> JWTIssuerConfig {
        JWTIssuerConfig(name: name, issuer: issuer, audiences: audiences, algorithms: algorithms, keys: keys)
    }

    /// Doubtful but valid settings, for `gatehouse check`: an allowed algorithm that no key can
    /// verify, an HMAC secret shorter than its hash (RFC 7518 §3.2), an empty allow-list.
    public var warnings: [String] {
        var warnings: [String] = []
        if algorithms.isEmpty { warnings.append("issuer \"\(name)\": no algorithms allowed: no token can pass") }
        let listed = algorithms.filter { $0 != .ed25519 || !algorithms.contains(.eddsa) }
        for algorithm in listed.sorted(by: { $0.rawValue < $1.rawValue }) {
            if !keys.isEmpty, !keys.keys.contains(where: { $0.canVerify(algorithm) }) {
                warnings.append("issuer \"\(name)\": algorithm \(algorithm) is allowed but no key can verify it")
            }
            if algorithm.family == .hmac {
                let needed = algorithm.hash == .sha256 ? 256 : algorithm.hash == .sha384 ? 384 : 512
                for key in keys.keys where key.keyType == .oct && key.sizeInBits < needed {
                    warnings.append("issuer \"\(name)\": the HMAC secret is \(key.sizeInBits / 8) bytes; \(algorithm) wants at least \(needed / 8) (RFC 7518 §3.2)")
                }
            }
        }
        return warnings
    }
}
