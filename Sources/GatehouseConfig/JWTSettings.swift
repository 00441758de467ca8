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

    public init(verifier: JWTVerifier, remoteJWKS: [RemoteJWKS] = []) {
        self.verifier = verifier
        self.remoteJWKS = remoteJWKS
    }
}

/// One `jwks_url` to fetch (SPEC §5.2): the issuer's name in `jwt.issuers` and the URL as
/// written (`http://` or `https://`, with a host).
public struct RemoteJWKS: Sendable, Hashable {
    public var issuer: String
    public var url: String

    public init(issuer: String, url: String) {
        self.issuer = issuer
        self.url = url
    }
}
