import Crypto
import Foundation
import GatehouseCore
@testable import GatehouseAuth

/// Helpers shared by the GatehouseAuth tests: base64url encoding and hand-made HS256 tokens.
enum TestTokens {
    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64URL(_ text: String) -> String { base64URL(Array(text.utf8)) }

    /// An HS256 JWS over the exact header and claims text given.
    static func hs256(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String, secret: [UInt8]) -> String {
        let input = base64URL(header) + "." + base64URL(claims)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
        return input + "." + base64URL(Array(mac))
    }

    /// The token with one bit flipped in the decoded bytes of part `part` (0 header, 1 payload,
    /// 2 signature), at byte `index` (negative counts from the end), re-encoded.
    static func flippingBit(in token: String, part: Int, byte index: Int, bit: UInt8 = 0) -> String {
        var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var bytes = Base64URL.decode(parts[part])!
        let position = index >= 0 ? index : bytes.count + index
        bytes[position] ^= 1 << bit
        parts[part] = base64URL(bytes)
        return parts.joined(separator: ".")
    }
}

/// The committed fixture written by Fixtures/mint.py (PyJWT and joserfc).
struct TokenFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let token: String
        let expect: String
        let note: String
        let issuer: String?
        let subject: String?
        let roles: [String]?
    }

    let generated_by: String
    let now: Int64
    let leeway: Int64
    let audience: String
    let issuers: [String: String]
    let hmac_secret: String
    let rsa_public_pem: String
    let shapes: [String: String]
    let cases: [Case]

    /// The raw JSON text of `jwks` and `mixed_jwks`, handed to the JWKS parser as a file would be.
    private(set) var jwksText = ""
    private(set) var mixedJWKSText = ""

    private enum CodingKeys: String, CodingKey {
        case generated_by, now, leeway, audience, issuers, hmac_secret, rsa_public_pem, shapes, cases
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        generated_by = try container.decode(String.self, forKey: .generated_by)
        now = try container.decode(Int64.self, forKey: .now)
        leeway = try container.decode(Int64.self, forKey: .leeway)
        audience = try container.decode(String.self, forKey: .audience)
        issuers = try container.decode([String: String].self, forKey: .issuers)
        hmac_secret = try container.decode(String.self, forKey: .hmac_secret)
        rsa_public_pem = try container.decode(String.self, forKey: .rsa_public_pem)
        shapes = try container.decode([String: String].self, forKey: .shapes)
        cases = try container.decode([Case].self, forKey: .cases)
    }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokens.json")

    static func load() throws -> TokenFixture {
        let data = try Data(contentsOf: url)
        var decoded = try JSONDecoder().decode(TokenFixture.self, from: data)
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        func text(_ key: String) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object[key]!), as: UTF8.self)
        }
        decoded.jwksText = try text("jwks")
        decoded.mixedJWKSText = try text("mixed_jwks")
        return decoded
    }

    /// The three issuers mint.py's cases assume.
    func verifier(rolesClaim: String = "roles") throws -> JWTVerifier {
        let asymmetric: Set<JWSAlgorithm> = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .es256, .es384, .eddsa]
        return JWTVerifier(issuers: [
            JWTIssuerConfig(name: "idp", issuer: issuers["idp"], audiences: [audience], algorithms: asymmetric,
                            keys: try JWKSet(jwksJSON: jwksText)),
            JWTIssuerConfig(name: "local", issuer: issuers["local"], audiences: [audience],
                            algorithms: [.hs256, .hs384, .hs512],
                            keys: try JWKSet(hmacSecret: Base64URL.decode(hmac_secret)!)),
            JWTIssuerConfig(name: "mixed", issuer: issuers["mixed"], audiences: nil, algorithms: [.hs256, .rs256],
                            keys: try JWKSet(jwksJSON: mixedJWKSText)),
        ], leeway: leeway, rolesClaim: rolesClaim)
    }
}

extension Result where Failure == Reason {
    /// "ok" or the reason's raw value, as the fixture's `expect` spells it.
    var outcome: String {
        switch self {
        case .success: return "ok"
        case .failure(let reason): return reason.rawValue
        }
    }
}
