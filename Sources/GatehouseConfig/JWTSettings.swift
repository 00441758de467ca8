import GatehouseAuth

/// SPEC §2 `jwt`, validated: the verifier for Bearer tokens (SPEC §5.1) and the key sets still
/// to fetch (SPEC §5.2).
public struct JWTSettings: Sendable {
    /// Every issuer with the keys known at load time: the HMAC secret (`secret_file`,
    /// `secret_env`) and the keys of `jwks_file`. An issuer with only `jwks_url` has an empty
    /// key set until its first fetch.
    public var verifier: JWTVerifier
    /// The issuers whose keys come from a URL, in configuration order. The fetched set replaces
    /// the issuer's whole key set (``JWTVerifier/replacingKeys(_:forIssuer:)``): with both
    /// `jwks_file` and `jwks_url`, the file's keys serve until the first fetch succeeds. That is
    /// why the loader refuses an HMAC secret next to `jwks_url`: the first fetch would drop it.
    public var remoteJWKS: [RemoteJWKS]
    /// The one issuer with `introspection` (SPEC §14.3), or nil.
    public var introspection: IntrospectionSettings?

    public init(verifier: JWTVerifier, remoteJWKS: [RemoteJWKS] = [], introspection: IntrospectionSettings? = nil) {
        self.verifier = verifier
        self.remoteJWKS = remoteJWKS
        self.introspection = introspection
    }
}

/// One key set to fetch: a `jwks_url` (SPEC §5.2), or with `discovery: true` the issuer's
/// discovery document first (SPEC §14.1), whose `jwks_uri` is then fetched.
public struct RemoteJWKS: Sendable, Hashable {
    /// The issuer's name in `jwt.issuers`.
    public var issuer: String
    /// The `jwks_url` as written (`http://` or `https://`, with a host), or the discovery URL.
    public var url: String
    /// With discovery: the configured `issuer` (the `iss` value), which the document's own
    /// `issuer` must equal exactly; nil for a plain `jwks_url`.
    public var discoveryIssuer: String?

    public init(issuer: String, url: String, discoveryIssuer: String? = nil) {
        self.issuer = issuer
        self.url = url
        self.discoveryIssuer = discoveryIssuer
    }
}
