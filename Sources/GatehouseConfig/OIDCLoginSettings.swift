/// SPEC §2 `sessions.oidc`, validated (SPEC §14.2): browser login through an OpenID provider.
public struct OIDCLoginSettings: Sendable {
    /// The `jwt.issuers` name (with `discovery: true`) whose provider logs users in.
    public var issuerName: String
    public var clientID: String
    public var clientSecret: [UInt8]
    /// `GET` here (`?return_to=/path`) starts a login: 302 to the provider.
    public var loginPath: String
    /// The provider sends the browser back here with `code` and `state`.
    public var callbackPath: String
    /// Requested scopes; always holds `openid`.
    public var scopes: [String]
    /// The ID token claim with the roles (dotted path); nil: `jwt.roles_claim`.
    public var rolesClaim: String?

    public init(issuerName: String, clientID: String, clientSecret: [UInt8], loginPath: String = "/oidc/login",
                callbackPath: String = "/oidc/callback", scopes: [String] = ["openid", "profile", "email"],
                rolesClaim: String? = nil) {
        self.issuerName = issuerName
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.loginPath = loginPath
        self.callbackPath = callbackPath
        self.scopes = scopes
        self.rolesClaim = rolesClaim
    }
}

/// Reads `sessions.oidc` (SPEC §2, §14.2). The issuer it names is checked against `jwt` by
/// ``crossCheck(_:jwt:publicOrigin:diagnostics:)`` once both sections are read.
struct OIDCLoginSection {
    private(set) var settings: OIDCLoginSettings?
    let node: ConfigNode
    private(set) var issuerNode: ConfigNode?

    init(_ node: ConfigNode, configDirectory: String, paths: inout [(path: String, key: String, node: ConfigNode?)],
         _ diagnostics: Diagnostics) {
        self.node = node
        guard let fields = node.fields(ConfigKeys.sessionsOIDC, diagnostics) else { return }
        issuerNode = fields.required("issuer", diagnostics)
        let issuer = issuerNode?.string(diagnostics)
        let clientID = fields.required("client_id", diagnostics).flatMap { idNode -> String? in
            guard let text = idNode.string(diagnostics) else { return nil }
            guard !text.isEmpty, text.utf8.count <= 256, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                diagnostics.error(idNode, "expected a client id of 1 to 256 printable ASCII characters without spaces")
                return nil
            }
            return text
        }
        let sources = KeySources(configDirectory: configDirectory, environment: { _ in nil }, diagnostics)
        let secret = fields.required("client_secret_file", diagnostics).flatMap(sources.secretFile)
        let loginPath = Self.path(fields, "login_path", default: "/oidc/login", into: &paths, diagnostics)
        let callbackPath = Self.path(fields, "callback_path", default: "/oidc/callback", into: &paths, diagnostics)
        var scopes = ["openid", "profile", "email"]
        if let scopesNode = fields["scopes"], let list = scopesNode.stringList(of: "scope", diagnostics) {
            scopes = list.map(\.value)
            for (scope, item) in list where scope.isEmpty || !scope.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }) {
                diagnostics.error(item, "a scope is printable ASCII without spaces, quotes or backslashes, got \(quoted(scope))")
            }
            if !scopes.contains("openid") { diagnostics.error(scopesNode, "scopes must include openid (OpenID Connect Core §3.1.2.1)") }
        }
        var rolesClaim: String?
        if let claimNode = fields["roles_claim"], let text = claimNode.string(diagnostics) {
            if let problem = ClaimPath.problem(text) { diagnostics.error(claimNode, problem) } else { rolesClaim = text }
        }
        guard let issuer, let clientID, let secret else { return }
        settings = OIDCLoginSettings(issuerName: issuer, clientID: clientID, clientSecret: secret, loginPath: loginPath,
                                     callbackPath: callbackPath, scopes: scopes, rolesClaim: rolesClaim)
    }

    private static func path(_ fields: Fields, _ key: String, default: String,
                             into paths: inout [(path: String, key: String, node: ConfigNode?)],
                             _ diagnostics: Diagnostics) -> String {
        guard let node = fields[key] else {
            paths.append((`default`, "sessions.oidc.\(key)", nil))
            return `default`
        }
        guard let text = node.string(diagnostics) else { return `default` }
        if let problem = EndpointPath.problem(text) {
            diagnostics.error(node, problem.message)
            return `default`
        }
        paths.append((text, "sessions.oidc.\(key)", node))
        return text
    }

    /// SPEC §14.2, §14.3: the issuer is a `jwt.issuers` name with `discovery: true` and
    /// `audiences` that do not hold the client id (ID tokens are never API tokens); the
    /// callback URL is built from `server.public_origin`, which is therefore required.
    func crossCheck(jwt: JWTSettings?, jwtPresent: Bool, publicOrigin: String?, _ diagnostics: Diagnostics) {
        guard let settings, let issuerNode else { return }
        if publicOrigin == nil {
            diagnostics.error(node, "sessions.oidc needs server.public_origin: the callback URL the provider sends browsers "
                                  + "back to is public_origin + callback_path")
        }
        guard jwtPresent else {
            return diagnostics.error(issuerNode, "names a jwt.issuers entry, but there is no jwt section")
        }
        guard let jwt else { return }   // the jwt section has errors of its own
        guard let issuer = jwt.verifier.issuers.first(where: { $0.name == settings.issuerName }) else {
            let names = jwt.verifier.issuers.map(\.name).joined(separator: ", ")
            return diagnostics.error(issuerNode, "unknown issuer \(quoted(settings.issuerName)); jwt.issuers has: \(names)")
        }
        if !jwt.remoteJWKS.contains(where: { $0.issuer == issuer.name && $0.discoveryIssuer != nil }) {
            diagnostics.error(issuerNode, "issuer \(quoted(issuer.name)) needs discovery: true: the login uses its "
                                  + "authorization_endpoint and token_endpoint")
        }
        guard let audiences = issuer.audiences else {
            return diagnostics.error(issuerNode, "issuer \(quoted(issuer.name)) serves sessions.oidc, so it must list audiences "
                                         + "(without \(quoted(settings.clientID))): otherwise its ID tokens would pass as API tokens")
        }
        if audiences.contains(settings.clientID) {
            diagnostics.error(issuerNode, "issuer \(quoted(issuer.name))'s audiences hold the login client id "
                                  + "\(quoted(settings.clientID)): its ID tokens would pass as API tokens (SPEC §14.3)")
        }
    }
}
