import GatehouseAuth
import GatehouseCore
import Yams

/// `token: {issuer, claims, key_file, alg}` of a policy test case (SPEC §15.1).
extension CaseReader {
    /// Largest key file read (a 16,384-bit RSA key in PEM is under 13 KiB).
    static let maxKeyFileBytes = 64 * 1024

    func readToken(_ node: ConfigNode) -> PolicyTestToken? {
        guard let fields = node.fields(PolicyTestCases.tokenKeys, diagnostics) else { return nil }
        let claims = fields["claims"].map(readClaims) ?? []
        guard let issuerNode = fields.required("issuer", diagnostics), let name = issuerNode.string(diagnostics) else { return nil }
        guard let issuer = config.jwt?.verifier.issuers.first(where: { $0.name == name }) else {
            let known = config.jwt?.verifier.issuers.map(\.name).joined(separator: ", ")
            diagnostics.error(issuerNode, "unknown issuer \(quoted(name)); "
                                + (known.map { "jwt.issuers names: \($0)" } ?? "the configuration has no jwt section"))
            return nil
        }
        guard let signer = signer(for: issuer, keyFile: fields["key_file"], owner: node) else { return nil }
        let possible = JWTMinter.algorithms(for: signer)
        let algorithm: JWSAlgorithm
        if let algNode = fields["alg"] {
            // Any algorithm the key can sign, allowed by the issuer or not: a case may test
            // that a token in another algorithm is refused (`alg_not_allowed`).
            guard let text = algNode.string(diagnostics) else { return nil }
            guard let chosen = JWSAlgorithm(rawValue: text), possible.contains(chosen) else {
                diagnostics.error(algNode, "this key signs \(possible.map(\.rawValue).joined(separator: ", ")), got \(algNode.described)")
                return nil
            }
            algorithm = chosen
        } else {
            guard let allowed = possible.first(where: issuer.algorithms.contains) else {
                let allowList = issuer.algorithms.map(\.rawValue).sorted().joined(separator: ", ")
                diagnostics.error(fields["key_file"] ?? issuerNode,
                                  "issuer \(quoted(name)) allows \(allowList), none of which this key signs "
                                    + "(it signs \(possible.map(\.rawValue).joined(separator: ", ")))")
                return nil
            }
            algorithm = allowed
        }
        return PolicyTestToken(issuer: name, algorithm: algorithm, signer: signer, standsIn: fields["key_file"] != nil,
                               iss: issuer.issuer, audience: issuer.audiences?.first, claims: claims)
    }

    /// The issuer's HMAC secret, or the private key of `key_file` (required for an issuer
    /// without a secret: the public half of that key then stands in for the issuer's keys).
    private func signer(for issuer: JWTIssuerConfig, keyFile: ConfigNode?, owner: ConfigNode) -> JWTMinter.Signer? {
        guard let keyFile else {
            if let secret = issuer.keys.keys.first(where: { $0.keyType == .oct }) { return .hmac(secret) }
            diagnostics.error(owner, "key_file: required key is missing: issuer \(quoted(issuer.name)) has no HMAC "
                                + "secret, so a test token is signed with a PEM private key whose public half stands in "
                                + "for the issuer's keys")
            return nil
        }
        guard let file = keyFile.string(diagnostics) else { return nil }
        let path = file.hasPrefix("/") ? file : ConfigPaths.join(directory, file)
        switch FileContents.text(path, limit: Self.maxKeyFileBytes) {
        case .failure(let error):
            diagnostics.error(keyFile, "cannot read \(quoted(file)): \(error.message)")
            return nil
        case .success(let pem):
            do {
                return .key(try TokenSigningKey(pem: pem))
            } catch {
                diagnostics.error(keyFile, "\(quoted(file)) \(error.description)")
                return nil
            }
        }
    }

    /// `claims: {name: value}`: strings, numbers, booleans, lists and mappings as JSON; `null`
    /// leaves the claim out (also `iss`, `aud`, `iat` or `exp`, which are otherwise set).
    private func readClaims(_ node: ConfigNode) -> [(String, JSONValue?)] {
        guard let entries = node.entries(diagnostics) else { return [] }
        var claims: [(String, JSONValue?)] = []
        for entry in entries {
            let value = node.named(entry.key, entry.value)
            if value.isNull { claims.append((entry.key, nil)); continue }
            if let json = Self.json(value.node) {
                claims.append((entry.key, json))
            } else {
                diagnostics.error(value, "a claim must be a string, number, boolean, list or mapping with string keys")
            }
        }
        return claims
    }

    /// A YAML node as JSON: a plain scalar by its resolved tag, a quoted one as a string.
    static func json(_ node: Node) -> JSONValue? {
        switch node {
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool)
            case .int: return node.int.map { .number(JSONNumber($0)) }
            case .float:
                guard let value = node.float, value.isFinite else { return nil }
                return .number(JSONNumber(value))
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for item in sequence {
                guard let value = json(item) else { return nil }
                items.append(value)
            }
            return .array(items)
        case .mapping(let mapping):
            var members: [(name: String, value: JSONValue)] = []
            for (key, item) in mapping {
                guard let name = key.scalar?.string, let value = json(item) else { return nil }
                members.append((name, value))
            }
            return .object(JSONObject(members))
        case .alias:
            return nil
        }
    }
}
