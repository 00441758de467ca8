/// The JWS `alg` values gatehouse verifies (RFC 7518 §3.1, RFC 8037 §3.1, RFC 9864 §2.2).
///
/// Names are case-sensitive, as in a token header. `none` is not a case: an unsigned token can
/// never be accepted, and ``init(configName:)`` refuses it in any letter case.
/// `EdDSA` (RFC 8037) and `Ed25519` (RFC 9864's fully-specified name) are the same algorithm
/// here; either name in an allow-list admits both (see ``JWTIssuerConfig``).
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384"
    case eddsa = "EdDSA", ed25519 = "Ed25519"

    /// Why a configured algorithm name was refused.
    public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The algorithm named in configuration (`jwt.issuers[].algorithms`). `none` in any letter
    /// case is refused; an unknown name is refused with the list of valid names.
    public init(configName name: String) throws(ConfigError) {
        if name.lowercased() == "none" {
            throw ConfigError(description: "algorithm \"\(name)\" is never accepted: unsigned tokens would pass")
        }
        guard let algorithm = JWSAlgorithm(rawValue: name) else {
            let valid = JWSAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
            if let fold = JWSAlgorithm.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) {
                throw ConfigError(description: "unknown algorithm \"\(name)\" (names are case-sensitive: did you mean \(fold.rawValue)?); valid: \(valid)")
            }
            throw ConfigError(description: "unknown algorithm \"\(name)\"; valid: \(valid)")
        }
        self = algorithm
    }

    public var description: String { rawValue }

    /// What kind of key and primitive the algorithm needs.
    enum Family: Sendable, Equatable {
        case hmac, rsaPKCS1, rsaPSS, ecdsaP256, ecdsaP384, ed25519
    }

    /// The hash the algorithm uses (Ed25519 hashes internally; SHA-512 is reported for it).
    enum Hash: Sendable { case sha256, sha384, sha512 }

    var family: Family {
        switch self {
        case .hs256, .hs384, .hs512: return .hmac
        case .rs256, .rs384, .rs512: return .rsaPKCS1
        case .ps256, .ps384, .ps512: return .rsaPSS
        case .es256: return .ecdsaP256
        case .es384: return .ecdsaP384
        case .eddsa, .ed25519: return .ed25519
        }
    }

    var hash: Hash {
        switch self {
        case .hs256, .rs256, .ps256, .es256: return .sha256
        case .hs384, .rs384, .ps384, .es384: return .sha384
        case .hs512, .rs512, .ps512, .eddsa, .ed25519: return .sha512
        }
    }

    /// One name per distinct algorithm: `Ed25519` and `EdDSA` are the same here.
    var canonical: JWSAlgorithm { self == .ed25519 ? .eddsa : self }
}
