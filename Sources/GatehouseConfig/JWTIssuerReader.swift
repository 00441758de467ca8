import GatehouseAuth
import GatehouseCore

/// Reads the entries of `jwt.issuers` (SPEC §2, §5.1): names, expected `iss` and `aud`, the
/// algorithm allow-list and the key sources, loading key files and secrets as it goes.
///
/// Every algorithm must have a possible key (an HMAC algorithm a secret; any other a JWKS whose
/// keys can verify it, or a `jwks_url` that may bring one), or no token signed with it could
/// ever pass: that is an error, not a warning. Secrets never appear in a message, only their
/// length.
final class JWTIssuerReader {
    struct Entry {
        var config: JWTIssuerConfig
        var jwksURL: String?
        /// `discovery: true`: the configured `issuer`, whose discovery document names the keys.
        var discoveryIssuer: String?
        /// `introspection` (SPEC §14.3) and where it was written.
        var introspection: IntrospectionSettings?
        var introspectionNode: ConfigNode?
    }

    /// Every `name` written, valid or not, in file order.
    private(set) var declaredNames: [String] = []

    private let issuerCount: Int
    private let configDirectory: String
    private let environment: (String) -> String?
    private let diagnostics: Diagnostics
    private var firstName: [String: SourceLocation] = [:]
    private var firstIssuer: [String: String] = [:]

    init(issuerCount: Int, configDirectory: String, environment: @escaping (String) -> String?,
         _ diagnostics: Diagnostics) {
        self.issuerCount = issuerCount
        self.configDirectory = configDirectory
        self.environment = environment
        self.diagnostics = diagnostics
    }

    /// One issuer; nil when anything in it is invalid (every problem is reported).
    func read(_ item: ConfigNode) -> Entry? {
        guard let fields = item.fields(ConfigKeys.jwtIssuer, diagnostics) else { return nil }
        let errorsBefore = diagnostics.errorCount
        let name = fields.required("name", diagnostics).flatMap(issuerName)
        let iss = expectedIssuer(fields, item)
        let audiences = fields["audiences"]?.stringList(of: "audience", diagnostics)?.map(\.value)
        let algorithms = fields.required("algorithms", diagnostics).map(algorithmList) ?? []

        let discovery = discoveryIssuer(fields, iss: iss)
        // `discovery: true`, even when invalid (reported above): a key source for the checks below.
        let discoveryNode = fields["discovery"].flatMap { $0.node.scalar?.string.lowercased() == "true" ? $0 : nil }
        let keys = keySources(fields, item, algorithms: algorithms, discovery: discoveryNode)
        let introspectionNode = fields["introspection"]
        let introspection = introspectionNode.flatMap { introspectionSettings($0, issuerName: name, discovery: discovery != nil) }
        guard diagnostics.errorCount == errorsBefore, let name else { return nil }
        var jwks = keys.secret.map { [JWK(hmacSecret: $0)] } ?? []
        jwks += keys.file?.keys ?? []
        let config = JWTIssuerConfig(name: name, issuer: iss, audiences: audiences,
                                     algorithms: Set(algorithms.map(\.algorithm)),
                                     keys: JWKSet(keys: jwks, warnings: keys.file?.warnings ?? []))
        return Entry(config: config, jwksURL: keys.url, discoveryIssuer: discovery?.issuer, introspection: introspection,
                     introspectionNode: introspectionNode)
    }

    /// `introspection: {client_id, client_secret_file, cache}` (SPEC §14.3). The endpoint comes
    /// from the discovery document, so `discovery: true` is required.
    private func introspectionSettings(_ node: ConfigNode, issuerName: String?, discovery: Bool) -> IntrospectionSettings? {
        guard let fields = node.fields(ConfigKeys.introspection, diagnostics) else { return nil }
        if !discovery {
            diagnostics.error(node, "introspection needs discovery: true: the introspection_endpoint comes from the discovery document")
        }
        let clientID = fields.required("client_id", diagnostics).flatMap { idNode -> String? in
            guard let text = idNode.string(diagnostics) else { return nil }
            guard !text.isEmpty, text.utf8.count <= 256, text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                diagnostics.error(idNode, "expected a client id of 1 to 256 characters without control characters")
                return nil
            }
            return text
        }
        let sources = KeySources(configDirectory: configDirectory, environment: environment, diagnostics)
        let secret = fields.required("client_secret_file", diagnostics).flatMap(sources.secretFile)
        var cache: Int64 = 60
        if let cacheNode = fields["cache"], let seconds = cacheNode.seconds(allowZero: true, diagnostics) {
            cache = seconds
            if seconds > 3600 {
                diagnostics.warning(cacheNode, "a revoked token stays accepted for up to \(cacheNode.described); minutes are usual")
            }
        }
        guard let issuerName, let clientID, let secret else { return nil }
        return IntrospectionSettings(issuerName: issuerName, clientID: clientID, clientSecret: secret, cacheSeconds: cache)
    }

    /// `discovery: true` (SPEC §14.1): needs `issuer`, an http(s) URL (the document is fetched
    /// from it and must name it exactly). Returns the issuer and the `discovery` node.
    private func discoveryIssuer(_ fields: Fields, iss: String?) -> (issuer: String, node: ConfigNode)? {
        guard let node = fields["discovery"], let on = node.bool(diagnostics), on else { return nil }
        guard let iss else {
            if fields["issuer"] == nil {
                diagnostics.error(node, "discovery needs issuer: the document is fetched from {issuer}/.well-known/openid-configuration")
            }
            return nil
        }
        if case .failure(let error) = AddressSyntax.fetchURL(iss) {
            diagnostics.error(node, "discovery needs an issuer that is an http:// or https:// URL: \(error.message)")
            return nil
        }
        return (iss, node)
    }

    // MARK: - Fields

    private func issuerName(_ node: ConfigNode) -> String? {
        guard let name = node.string(diagnostics) else { return nil }
        declaredNames.append(name)
        guard Names.isValid(name) else {
            diagnostics.error(node, "\(Names.rule), got \(quoted(name))")
            return nil
        }
        if let first = firstName[name] {
            diagnostics.error(node, "duplicate issuer name \(quoted(name)); first defined at \(first)")
            return nil
        }
        firstName[name] = node.location
        return name
    }

    /// `issuer` (the `iss` value): optional for a sole issuer only (SPEC §5.1), and unique —
    /// a token's `iss` picks exactly one entry.
    private func expectedIssuer(_ fields: Fields, _ item: ConfigNode) -> String? {
        guard let node = fields["issuer"] else {
            if issuerCount > 1 {
                diagnostics.error(item, "issuer is required when there is more than one issuer: a token's iss picks its entry")
            }
            return nil
        }
        guard let text = node.string(diagnostics) else { return nil }
        guard !text.isEmpty else {
            diagnostics.error(node, "expected the iss value of this issuer's tokens, got \"\"; leave issuer out to not check iss")
            return nil
        }
        if let first = firstIssuer[text] {
            diagnostics.error(node, "\(quoted(text)) is already the issuer of \(first): a token's iss picks one entry")
            return nil
        }
        firstIssuer[text] = fields.owner.path
        return text
    }

    private func algorithmList(_ node: ConfigNode) -> [(algorithm: JWSAlgorithm, node: ConfigNode)] {
        var algorithms: [(algorithm: JWSAlgorithm, node: ConfigNode)] = []
        for (text, item) in node.stringList(of: "algorithm", diagnostics) ?? [] {
            do throws(JWSAlgorithm.ConfigError) {
                let algorithm = try JWSAlgorithm(configName: text)
                if algorithms.contains(where: { $0.algorithm == algorithm }) {
                    diagnostics.warning(item, "\(algorithm) is listed twice")
                } else {
                    algorithms.append((algorithm, item))
                }
            } catch {
                diagnostics.error(item, error.description)
            }
        }
        return algorithms
    }

    // MARK: - Keys

    /// Reads `secret_file` / `secret_env`, `jwks_file` and `jwks_url`, and checks that every
    /// algorithm has a possible key and that every key source is of use.
    private func keySources(_ fields: Fields, _ item: ConfigNode,
                            algorithms: [(algorithm: JWSAlgorithm, node: ConfigNode)],
                            discovery: ConfigNode?)
        -> (secret: [UInt8]?, file: JWKSet?, url: String?) {
        let sources = KeySources(configDirectory: configDirectory, environment: environment, diagnostics)
        var secretNode = fields["secret_file"]
        var secret = secretNode.flatMap(sources.secretFile)
        if let envNode = fields["secret_env"] {
            if secretNode != nil {
                diagnostics.error(envNode, "secret_file and secret_env are mutually exclusive: keep one")
            } else {
                secretNode = envNode
                secret = sources.secretEnv(envNode)
            }
        }
        let fileNode = fields["jwks_file"]
        let file = fileNode.flatMap(sources.jwksFile)
        var urlNode = fields["jwks_url"]
        let url = urlNode.flatMap(sources.jwksURL)
        if let secretNode, let urlNode {
            diagnostics.error(urlNode, "cannot be combined with \(secretNode.path): "
                                  + "a fetched key set replaces the issuer's whole key set, the HMAC secret included")
        }
        if let discovery {
            if let urlNode {
                diagnostics.error(urlNode, "cannot be combined with discovery: true, which takes the key set's URL "
                                      + "from the discovery document's jwks_uri; keep one")
            } else if let secretNode {
                diagnostics.error(discovery, "cannot be combined with \(secretNode.path): "
                                      + "a fetched key set replaces the issuer's whole key set, the HMAC secret included")
            }
            urlNode = urlNode ?? discovery   // a fetched key set, for the checks below
        }

        for (algorithm, node) in algorithms {
            let missing: String
            if algorithm.isHMAC {
                guard secretNode == nil else { continue }
                missing = "the issuer has no secret_file or secret_env"
            } else if fileNode == nil && urlNode == nil {
                missing = "the issuer has no jwks_file or jwks_url"
            } else if urlNode == nil, let file, let path = fileNode?.node.scalar?.string,
                      !file.keys.contains(where: { $0.canVerify(algorithm) }) {
                missing = "no key in jwks_file \(quoted(path)) can verify it"
            } else {
                continue
            }
            diagnostics.error(node.location, "\(item.path): algorithms lists \(algorithm) but \(missing)")
        }
        guard !algorithms.isEmpty else { return (secret, file, url) }
        let hmac = algorithms.map(\.algorithm).filter(\.isHMAC)
        if let secretNode, hmac.isEmpty {
            diagnostics.warning(secretNode, "unused: algorithms lists no HMAC algorithm (HS256, HS384, HS512)")
        }
        if hmac.count == algorithms.count, let unused = fileNode ?? urlNode {
            diagnostics.warning(unused, "unused: algorithms lists only HMAC algorithms, which never verify with a JWKS key")
        }
        if let secret, let secretNode {
            // RFC 7518 §3.2: a key at least as long as the hash output, for each HMAC algorithm.
            let short = hmac.filter { secret.count < $0.minimumSecretBytes }
            if !short.isEmpty {
                let wanted = short.map { "\($0) (\($0.minimumSecretBytes) bytes)" }.joined(separator: ", ")
                diagnostics.warning(secretNode, "the HMAC secret is \(secret.count) bytes, shorter than RFC 7518 §3.2 "
                                        + "requires for \(wanted)")
            }
        }
        return (secret, file, url)
    }
}

extension JWSAlgorithm {
    /// HS256, HS384, HS512: verified with the shared secret, never with a JWKS key.
    var isHMAC: Bool { rawValue.hasPrefix("HS") }

    /// The hash output size, the least key size RFC 7518 §3.2 allows (HMAC algorithms only).
    var minimumSecretBytes: Int {
        switch self {
        case .hs384: return 48
        case .hs512: return 64
        default: return 32
        }
    }
}
