/// Why a JWK Set document was refused as a whole.
public struct JWKSetError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The verification keys of one issuer: parsed from a JWK Set document (RFC 7517 §5) or made
/// from an HMAC secret. Immutable; a refreshed JWKS is a new value.
///
/// Unusable keys in a document (an encryption key, a 1024-bit RSA key, an unsupported curve)
/// are skipped, each with a warning in ``warnings`` for `gatehouse check` and the log; only a
/// document that is not a JWK Set at all is an error.
public struct JWKSet: Sendable {
    /// The usable keys, in document order.
    public let keys: [JWK]
    /// One line per skipped key or doubtful detail, e.g.
    /// `keys[2] (kid "old"): skipped: RSA key is 1024 bits; at least 2048 are required`.
    public let warnings: [String]

    public init(keys: [JWK], warnings: [String] = []) {
        self.keys = keys
        self.warnings = warnings
    }

    /// A set holding one HMAC key (SPEC §2 `secret_file`, `secret_env`). An empty secret is
    /// refused: anyone could sign with it.
    public init(hmacSecret secret: [UInt8]) throws(JWKSetError) {
        guard !secret.isEmpty else { throw JWKSetError("the HMAC secret is empty") }
        self.init(keys: [JWK(hmacSecret: secret)])
    }

    /// Parses a JWK Set document: `{"keys": [ ... ]}`.
    public init(jwksJSON text: String) throws(JWKSetError) {
        try self.init(jwksJSON: Array(text.utf8))
    }

    /// Parses a JWK Set document: `{"keys": [ ... ]}`.
    public init(jwksJSON bytes: [UInt8]) throws(JWKSetError) {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw JWKSetError("not valid JSON: \(error)")
        }
        guard case .object(let object) = document else { throw JWKSetError("a JWK Set must be a JSON object with a \"keys\" array") }
        guard let keysValue = object["keys"] else {
            if object["kty"] != nil {
                throw JWKSetError("this is a single JWK, not a JWK Set: wrap it as {\"keys\": [ ... ]}")
            }
            throw JWKSetError("missing \"keys\" array")
        }
        guard case .array(let entries) = keysValue else { throw JWKSetError("\"keys\" must be an array") }
        var keys: [JWK] = []
        var warnings: [String] = []
        for (position, entry) in entries.enumerated() {
            var label = "keys[\(position)]"
            if let kid = entry["kid"]?.stringValue { label += " (kid \"\(kid)\")" }
            do {
                let key = try JWK(json: entry)
                keys.append(key)
                let privateMembers = ["d", "p", "q", "dp", "dq", "qi"].filter { entry[$0] != nil }
                if key.keyType != .oct, !privateMembers.isEmpty {
                    warnings.append("\(label): contains private key material (\(privateMembers.joined(separator: ", "))); only the public key is used — publish public keys only")
                }
            } catch {
                warnings.append("\(label): skipped: \(error)")
            }
        }
        if keys.isEmpty { warnings.append("the JWK Set has no usable signature keys") }
        self.init(keys: keys, warnings: warnings)
    }

    public var isEmpty: Bool { keys.isEmpty }
}
