import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehouseSessions

/// The 302 that starts a browser login at the provider, with the attempt's cookie.
public struct OIDCAuthorization: Sendable {
    public var location: String
    /// The attempt's own `Set-Cookie` (HttpOnly, SameSite=Lax, Path=callback_path, 10 minutes).
    public var setCookie: String
    public var attempt: OIDCLoginState
}

/// A callback whose `state` matched this browser's attempt: the code to exchange.
public struct OIDCCallbackStart: Sendable {
    public var code: String
    public var attempt: OIDCLoginState
}

/// Who logged in, from a checked ID token.
public struct OIDCIdentity: Sendable, Equatable {
    public var subject: String
    public var roles: [String]
}

/// Browser login through an OpenID provider (SPEC §14.2), authorization code flow with PKCE
/// S256, `state` and `nonce` (OpenID Connect Core §3.1, RFC 7636, RFC 9700 §2.1). Pure: the
/// random source, the clock, the provider's answer and the keys come in as values; the carrier
/// does the redirect, the code exchange and the session store.
extension Decide {
    /// `GET login_path`: a new attempt and the 302 to the provider's `authorization_endpoint`.
    /// 503 while the endpoint is not known (no discovery document accepted yet).
    public static func oidcAuthorization(_ oidc: OIDCLoginSettings, authorizationEndpoint: String?, returnTo: String?,
                                         config: borrowing GatewayConfig, now: Int64,
                                         using generator: inout some RandomNumberGenerator) -> Result<OIDCAuthorization, Refusal> {
        guard let endpoint = authorizationEndpoint, let redirectURI = oidcRedirectURI(oidc, config: config) else {
            return .failure(Refusal(.serviceUnavailable, .oidcProviderUnavailable, tried: .session))
        }
        let attempt = OIDCLoginState.start(returnTo: returnTo ?? "/", now: now, using: &generator)
        let parameters = [("response_type", "code"), ("client_id", oidc.clientID), ("redirect_uri", redirectURI),
                          ("scope", oidc.scopes.joined(separator: " ")), ("state", attempt.state), ("nonce", attempt.nonce),
                          ("code_challenge", attempt.codeChallenge), ("code_challenge_method", "S256")]
        let query = parameters.map { "\($0.0)=\(URLEncoding.component($0.1))" }.joined(separator: "&")
        let location = endpoint + (endpoint.contains("?") ? "&" : "?") + query
        let key = OIDCLoginState.key(clientSecret: oidc.clientSecret)
        let cookie = attemptCookie(attempt.cookieName, value: attempt.sealed(key: key), maxAge: OIDCLoginState.lifetimeSeconds,
                                   oidc: oidc, config: config)
        return .success(OIDCAuthorization(location: location, setCookie: cookie, attempt: attempt))
    }

    /// `public_origin` + `callback_path`: the `redirect_uri` of the authorization request and of
    /// the code exchange (the loader requires `public_origin` with `sessions.oidc`).
    public static func oidcRedirectURI(_ oidc: OIDCLoginSettings, config: borrowing GatewayConfig) -> String? {
        guard var origin = config.server.publicOrigin else { return nil }
        while origin.hasSuffix("/") { origin.removeLast() }
        return origin + oidc.callbackPath
    }

    /// The attempt cookie: `HttpOnly`, `SameSite=Lax` (the provider's redirect back is a
    /// top-level GET, which Lax lets through), `Path=` the callback, `Secure` as the session
    /// cookie. `maxAge` 0 clears it.
    public static func attemptCookie(_ name: String, value: String, maxAge: Int64, oidc: OIDCLoginSettings,
                                     config: borrowing GatewayConfig) -> String {
        var cookie = "\(name)=\(value); Path=\(oidc.callbackPath); Max-Age=\(maxAge); HttpOnly; SameSite=Lax"
        if config.sessions?.cookie.secure ?? true { cookie += "; Secure" }
        return cookie
    }

    /// `GET callback_path`: the code, when `state` names a valid, unexpired attempt cookie of
    /// this browser with that very state. A provider error (`error=`) is a refused code.
    public static func oidcCallback(_ oidc: OIDCLoginSettings, query: String?, cookieHeader: String?,
                                    now: Int64) -> Result<OIDCCallbackStart, Refusal> {
        func refuse(_ reason: Reason) -> Result<OIDCCallbackStart, Refusal> {
            .failure(Refusal(.unauthorized, reason, tried: .session))
        }
        guard let state = queryValue(query, "state"), SessionID.isWellFormed(state) else { return refuse(.oidcStateInvalid) }
        let name = OIDCLoginState.cookieName(state: state)
        guard let value = cookieHeader.flatMap({ cookieValue($0, name: name) }),
              let attempt = OIDCLoginState.open(value, key: OIDCLoginState.key(clientSecret: oidc.clientSecret), now: now),
              attempt.state == state else { return refuse(.oidcStateInvalid) }
        if queryValue(query, "error") != nil { return refuse(.oidcCodeRefused) }
        guard let code = queryValue(query, "code"), !code.isEmpty, code.utf8.count <= 4096 else { return refuse(.oidcCodeRefused) }
        return .success(OIDCCallbackStart(code: code, attempt: attempt))
    }

    /// The token request body (RFC 6749 §4.1.3 with RFC 7636 §4.5's `code_verifier`); the
    /// client authenticates with HTTP Basic (``IntrospectionSettings/basicAuthorization(clientID:secret:)``).
    public static func oidcTokenRequest(_ oidc: OIDCLoginSettings, start: OIDCCallbackStart,
                                        config: borrowing GatewayConfig) -> [UInt8] {
        let fields = [("grant_type", "authorization_code"), ("code", start.code),
                      ("redirect_uri", oidcRedirectURI(oidc, config: config) ?? ""), ("code_verifier", start.attempt.verifier)]
        return Array(fields.map { "\($0.0)=\(URLEncoding.component($0.1))" }.joined(separator: "&").utf8)
    }

    /// The token endpoint's answer: 200 with an `id_token` whose signature verifies with the
    /// issuer's keys (`verifier`, the keys known now), `iss` the issuer, `aud` holding
    /// `client_id`, a live `exp`, the attempt's `nonce` and a `sub`. Roles from `roles_claim`.
    public static func oidcIdentity(status: Int, body: [UInt8], attempt: OIDCLoginState, oidc: OIDCLoginSettings,
                                    verifier: JWTVerifier?, now: Int64) -> Result<OIDCIdentity, Refusal> {
        func refuse(_ reason: Reason) -> Result<OIDCIdentity, Refusal> { .failure(Refusal(.unauthorized, reason, tried: .session)) }
        guard status == 200 else { return refuse(.oidcCodeRefused) }
        guard case .object(let answer)? = try? JSONParser.parse(body), case .string(let idToken)? = answer["id_token"] else {
            return refuse(.oidcIDTokenInvalid)
        }
        guard let verifier, let issuer = verifier.issuers.first(where: { $0.name == oidc.issuerName }) else {
            return refuse(.oidcIDTokenInvalid)
        }
        // The issuer's keys and `iss`, but `aud` = the login client: ID tokens are checked
        // apart from API tokens (whose audiences never hold this client id, SPEC §14.3).
        let login = JWTIssuerConfig(name: issuer.name, issuer: issuer.issuer, audiences: [oidc.clientID],
                                    algorithms: issuer.algorithms, keys: issuer.keys)
        let idVerifier = JWTVerifier(issuers: [login], leeway: verifier.leeway, rolesClaim: oidc.rolesClaim ?? verifier.rolesClaim)
        guard case .success(let token) = idVerifier.verify(idToken, now: now),
              token.claims["nonce"]?.stringValue == attempt.nonce,
              let subject = token.subject, !subject.isEmpty else { return refuse(.oidcIDTokenInvalid) }
        return .success(OIDCIdentity(subject: subject, roles: token.roles))
    }

    /// The first value of `name` in a query string, percent-decoded (`+` as space); nil when
    /// absent or not UTF-8.
    static func queryValue(_ query: String?, _ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard String(decoding: parts[0], as: UTF8.self) == name else { continue }
            guard parts.count == 2 else { return "" }
            guard let bytes = PercentEncoding.decode(parts[1], plusAsSpace: true, limit: 8192) else { return nil }
            return String(validating: bytes, as: UTF8.self)
        }
        return nil
    }

    /// The value of cookie `name` in a `Cookie` header (RFC 6265 §5.4), or nil.
    static func cookieValue(_ header: String, name: String) -> String? {
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, pair[0].trimmingCharacters(in: " \t") == name else { continue }
            return pair[1].trimmingCharacters(in: " \t")
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var view = self
        while let first = view.first, set.contains(first) { view = view.dropFirst() }
        while let last = view.last, set.contains(last) { view = view.dropLast() }
        return String(view)
    }
}
