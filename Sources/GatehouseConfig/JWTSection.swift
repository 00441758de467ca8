import GatehouseAuth
import GatehouseCore

/// The `jwt` section (SPEC §2, §5.1): the roles claim, the clock leeway and the trusted
/// issuers with their keys. Key files are read here, so `check` reports a missing or bad key
/// file the same way as a bad YAML value.
struct JWTSection {
    /// Above this leeway an expired token stays good for too long to be an honest clock skew.
    static let maxQuietLeewaySeconds: Int64 = 300

    /// The validated settings; nil when the section is absent or anything in it is invalid.
    private(set) var settings: JWTSettings?
    /// Whether the config has a `jwt` section at all: then there is an authenticator.
    let isPresent: Bool
    /// Every issuer name written, valid or not, in file order (a route naming an issuer whose
    /// entry has an error gets no second, misleading "unknown issuer" error).
    private(set) var declaredNames: [String] = []

    /// `configDirectory` resolves relative key files; `environment` reads `secret_env`.
    init(_ node: ConfigNode?, configDirectory: String, environment: @escaping (String) -> String?,
         _ diagnostics: Diagnostics) {
        isPresent = node != nil
        guard let node, let fields = node.fields(ConfigKeys.jwt, diagnostics) else { return }
        let errorsBefore = diagnostics.errorCount

        var rolesClaim = "roles"
        if let claimNode = fields["roles_claim"], let text = claimNode.string(diagnostics) {
            if let problem = ClaimPath.problem(text) { diagnostics.error(claimNode, problem) } else { rolesClaim = text }
        }
        var leeway: Int64 = 30
        if let leewayNode = fields["leeway"], let seconds = leewayNode.seconds(allowZero: true, diagnostics) {
            leeway = seconds
            if seconds > Self.maxQuietLeewaySeconds {
                diagnostics.warning(leewayNode, "\(leewayNode.described) keeps expired tokens valid that long; "
                                        + "clock skew is normally a few seconds (at most 5m expected)")
            }
        }

        var issuers: [JWTIssuerConfig] = []
        var remote: [RemoteJWKS] = []
        var introspection: (settings: IntrospectionSettings, node: ConfigNode)?
        if let listNode = fields.required("issuers", diagnostics), let items = listNode.list(diagnostics) {
            if items.isEmpty { diagnostics.error(listNode, "at least one issuer is needed") }
            let reader = JWTIssuerReader(issuerCount: items.count, configDirectory: configDirectory,
                                         environment: environment, diagnostics)
            for item in items {
                let entry = reader.read(item)
                if let entry {
                    issuers.append(entry.config)
                    if let url = entry.jwksURL { remote.append(RemoteJWKS(issuer: entry.config.name, url: url)) }
                    if let settings = entry.introspection, let node = entry.introspectionNode {
                        if let first = introspection {
                            diagnostics.error(node, "only one issuer may have introspection (SPEC §14.3); "
                                                  + "\(first.settings.issuerName) has it at \(first.node.location)")
                        } else {
                            introspection = (settings, node)
                        }
                    }
                    if let iss = entry.discoveryIssuer {
                        remote.append(RemoteJWKS(issuer: entry.config.name, url: ProviderMetadata.discoveryURL(issuer: iss),
                                                 discoveryIssuer: iss))
                    }
                }
            }
            declaredNames = reader.declaredNames
        }
        guard diagnostics.errorCount == errorsBefore else { return }
        settings = JWTSettings(verifier: JWTVerifier(issuers: issuers, leeway: leeway, rolesClaim: rolesClaim),
                               remoteJWKS: remote, introspection: introspection?.settings)
    }
}
