import Crypto
import Foundation
import XCTest
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
import GatehousePolicy
@testable import GatehouseDecision

/// The OIDC browser login's decisions (SPEC §14.2), without a socket: the redirect to the
/// provider, the callback's state check, the ID token check, and OIDC sessions afterwards.
final class OIDCLoginTests: XCTestCase {
    static let now: Int64 = 1_900_000_000
    static let secret = Array("web-client-secret".utf8)

    static let config: GatewayConfig = {
        let directory = NSTemporaryDirectory() + "gatehouse-oidc-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = """
            server: { public_origin: "https://gw.example.com" }
            jwt:
              issuers:
                - { name: sso, issuer: "https://sso.example.com", audiences: [my-api], algorithms: [RS256], discovery: true }
            sessions:
              cookie: { name: gh, secure: true }
              oidc: { issuer: sso, client_id: "web-app", client_secret_file: web.secret, scopes: [openid, email] }
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: api, match: { path: "/api/**" }, upstream: api }
            """
        try! yaml.write(toFile: "\(directory)/gatehouse.yaml", atomically: true, encoding: .utf8)
        try! "web-client-secret\n".write(toFile: "\(directory)/web.secret", atomically: true, encoding: .utf8)
        let result = ConfigLoader.load(path: "\(directory)/gatehouse.yaml", cpuCount: 1)
        guard let config = result.config else { fatalError("fixture: \(result.problems)") }
        return config
    }()

    var oidc: OIDCLoginSettings { Self.config.sessions!.oidc! }

    func authorize(endpoint: String? = "https://sso.example.com/auth", returnTo: String? = "/app") -> Result<OIDCAuthorization, Refusal> {
        var random = SystemRandomNumberGenerator()
        return Decide.oidcAuthorization(oidc, authorizationEndpoint: endpoint, returnTo: returnTo, config: Self.config,
                                        now: Self.now, using: &random)
    }

    func testLoginPathPlansAndOtherMethodsAre404() {
        let auth = AuthContext(verifier: nil, cache: nil, now: Self.now)
        let get = Pipeline.decide(method: "GET", rawTarget: "/oidc/login?return_to=%2Fapp%3Fa%3D1", host: .fromRequest,
                                  headers: HeaderPairs([]), config: Self.config, auth: auth)
        guard case .endpoint(.oidcLogin(_, let returnTo), _) = get else { return XCTFail("\(get)") }
        XCTAssertEqual(returnTo, "/app?a=1")
        let post = Pipeline.decide(method: "POST", rawTarget: "/oidc/callback", host: .fromRequest, headers: HeaderPairs([]),
                                   config: Self.config, auth: auth)
        guard case .endpoint(.refuse(let r), _) = post else { return XCTFail("\(post)") }
        XCTAssertEqual(r.status, 404)
    }

    func testAuthorizationRedirectCarriesPKCEStateNonceAndTheAttemptCookie() throws {
        let a = try authorize().get()
        let url = URLComponents(string: a.location)!
        XCTAssertEqual(url.host, "sso.example.com")
        let items = Dictionary(uniqueKeysWithValues: url.queryItems!.map { ($0.name, $0.value!) })
        XCTAssertEqual(items["response_type"], "code")
        XCTAssertEqual(items["client_id"], "web-app")
        XCTAssertEqual(items["redirect_uri"], "https://gw.example.com/oidc/callback")
        XCTAssertEqual(items["scope"], "openid email")
        XCTAssertEqual(items["state"], a.attempt.state)
        XCTAssertEqual(items["nonce"], a.attempt.nonce)
        XCTAssertEqual(items["code_challenge"], a.attempt.codeChallenge)
        XCTAssertEqual(items["code_challenge_method"], "S256")
        XCTAssertFalse(a.location.contains(a.attempt.verifier), "the verifier never leaves the gateway in the URL")
        XCTAssertTrue(a.setCookie.hasPrefix(a.attempt.cookieName + "="))
        for attribute in ["Path=/oidc/callback", "Max-Age=600", "HttpOnly", "SameSite=Lax", "Secure"] {
            XCTAssertTrue(a.setCookie.contains(attribute), attribute)
        }
        let withQuery = try authorize(endpoint: "https://sso.example.com/auth?tenant=1").get()
        XCTAssertTrue(withQuery.location.hasPrefix("https://sso.example.com/auth?tenant=1&response_type=code"))
    }

    func testNoAuthorizationEndpointYetIs503() {
        guard case .failure(let r) = authorize(endpoint: nil) else { return XCTFail() }
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.reason, .oidcProviderUnavailable)
    }

    func callback(_ query: String?, cookie: String?, now: Int64 = now) -> Result<OIDCCallbackStart, Refusal> {
        Decide.oidcCallback(oidc, query: query, cookieHeader: cookie, now: now)
    }

    func testCallbackNeedsTheBrowsersOwnAttempt() throws {
        let a = try authorize().get()
        let cookie = "other=1; " + a.setCookie.split(separator: ";")[0] + "; gh=x"
        let ok = try callback("code=abc%2B1&state=\(a.attempt.state)", cookie: cookie).get()
        XCTAssertEqual(ok.code, "abc+1")
        XCTAssertEqual(ok.attempt, a.attempt)
        let b = try authorize().get()
        let cases: [(String?, String?, Int64, Reason)] = [
            ("code=abc", cookie, Self.now, .oidcStateInvalid),                                   // no state
            ("code=abc&state=\(b.attempt.state)", cookie, Self.now, .oidcStateInvalid),          // another attempt's state
            ("code=abc&state=\(a.attempt.state)", nil, Self.now, .oidcStateInvalid),             // no cookie
            ("code=abc&state=\(a.attempt.state)", "gh=x", Self.now, .oidcStateInvalid),
            ("code=abc&state=\(a.attempt.state)", cookie, a.attempt.expiresAt, .oidcStateInvalid),  // expired
            ("code=abc&state=x", cookie, Self.now, .oidcStateInvalid),
            ("state=\(a.attempt.state)", cookie, Self.now, .oidcCodeRefused),                   // no code
            ("error=access_denied&state=\(a.attempt.state)", cookie, Self.now, .oidcCodeRefused),
            ("code=&state=\(a.attempt.state)", cookie, Self.now, .oidcCodeRefused),
            (nil, cookie, Self.now, .oidcStateInvalid),
        ]
        for (query, cookieHeader, now, reason) in cases {
            guard case .failure(let r) = callback(query, cookie: cookieHeader, now: now) else { XCTFail("\(query ?? "nil")"); continue }
            XCTAssertEqual(r.reason, reason, query ?? "nil")
            XCTAssertEqual(r.status, 401)
        }
    }

    func testTokenRequestBody() throws {
        let a = try authorize().get()
        let body = String(decoding: Decide.oidcTokenRequest(oidc, start: OIDCCallbackStart(code: "c&d", attempt: a.attempt),
                                                            config: Self.config), as: UTF8.self)
        XCTAssertEqual(body, "grant_type=authorization_code&code=c%26d&redirect_uri=https%3A%2F%2Fgw.example.com%2Foidc%2Fcallback"
                           + "&code_verifier=\(a.attempt.verifier)")
    }

    // MARK: the ID token (HS256 here: the check is the issuer's, whatever its algorithm)

    static let hmacSecret = Array("an-hs256-secret-for-the-id-token-tests".utf8)
    static let verifier = JWTVerifier(issuers: [JWTIssuerConfig(name: "sso", issuer: "https://sso.example.com", audiences: ["my-api"],
                                                                algorithms: [.hs256], keys: JWKSet(keys: [JWK(hmacSecret: hmacSecret)]))],
                                      leeway: 30, rolesClaim: "roles")

    static func b64(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func idToken(_ claims: String) -> String {
        let input = b64(Array(#"{"alg":"HS256"}"#.utf8)) + "." + b64(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: hmacSecret))
        return input + "." + b64(mac)
    }

    func identity(_ claims: String, status: Int = 200, attempt: OIDCLoginState) -> Result<OIDCIdentity, Refusal> {
        let body = Array(#"{"access_token":"x","id_token":"\#(Self.idToken(claims))"}"#.utf8)
        return Decide.oidcIdentity(status: status, body: body, attempt: attempt, oidc: oidc, verifier: Self.verifier, now: Self.now)
    }

    func testIDTokenChecks() throws {
        let a = try authorize().get().attempt
        let good = #"{"iss":"https://sso.example.com","aud":"web-app","sub":"alice","exp":\#(Self.now + 60),"nonce":"\#(a.nonce)","roles":["admin"]}"#
        XCTAssertEqual(try identity(good, attempt: a).get(), OIDCIdentity(subject: "alice", roles: ["admin"]))
        let bad: [(String, Reason)] = [
            (good.replacingOccurrences(of: a.nonce, with: "other-nonce"), .oidcIDTokenInvalid),
            (good.replacingOccurrences(of: #""aud":"web-app""#, with: #""aud":"my-api""#), .oidcIDTokenInvalid),
            (good.replacingOccurrences(of: "https://sso.example.com", with: "https://evil.example.com"), .oidcIDTokenInvalid),
            (good.replacingOccurrences(of: "\(Self.now + 60)", with: "\(Self.now - 60)"), .oidcIDTokenInvalid),
            (good.replacingOccurrences(of: #""sub":"alice","#, with: ""), .oidcIDTokenInvalid),
            (good.replacingOccurrences(of: #","nonce":"\#(a.nonce)""#, with: ""), .oidcIDTokenInvalid),
        ]
        for (claims, reason) in bad {
            guard case .failure(let r) = identity(claims, attempt: a) else { XCTFail(claims); continue }
            XCTAssertEqual(r.reason, reason, claims)
        }
        guard case .failure(let refused) = identity(good, status: 400, attempt: a) else { return XCTFail() }
        XCTAssertEqual(refused.reason, .oidcCodeRefused)
        for body in ["", "[]", #"{"id_token":7}"#, #"{"access_token":"x"}"#, #"{"id_token":"a.b.c"}"#] {
            guard case .failure(let r) = Decide.oidcIdentity(status: 200, body: Array(body.utf8), attempt: a, oidc: oidc,
                                                             verifier: Self.verifier, now: Self.now) else { XCTFail(body); continue }
            XCTAssertEqual(r.reason, .oidcIDTokenInvalid, body)
        }
    }

    func testIDTokensAreNotAPITokens() {
        // The same ID token as a Bearer token: its aud is the login client, not in audiences.
        let token = Self.idToken(#"{"iss":"https://sso.example.com","aud":"web-app","sub":"alice","exp":\#(Self.now + 60)}"#)
        guard case .failure(let reason) = Self.verifier.verify(token, now: Self.now) else { return XCTFail() }
        XCTAssertEqual(reason, .wrongAudience)
    }

    func testOIDCSessionsKeepTheirRolesWithoutAUsersFile() {
        let wait = SessionWait(route: Self.config.routes.routes[0], requirement: nil, idHash: "h")
        let facts = RequestFacts(method: "GET", target: NormalizedTarget(path: "/api/x", query: nil, authority: nil), host: nil,
                                 headers: HeaderPairs([]), config: Self.config)
        let oidcRecord = SessionRecord(idHash: "h", subject: "zed", roles: ["admin"], createdAt: Self.now, lastSeen: Self.now,
                                       absoluteExpiry: Self.now + 600, oidc: true)
        guard case .forward(let f) = Decide.plan(afterSession: .success(oidcRecord), wait: wait, facts: facts, config: Self.config,
                                                 now: Self.now) else { return XCTFail() }
        XCTAssertEqual(f.identity?.roles, ["admin"])
        XCTAssertEqual(f.identity?.method, .session)
        var password = oidcRecord
        password.oidc = false
        guard case .refuse(let r) = Decide.plan(afterSession: .success(password), wait: wait, facts: facts, config: Self.config,
                                                now: Self.now) else { return XCTFail() }
        XCTAssertEqual(r.reason, .sessionRevoked, "a password session needs a users file that knows the user")
    }
}
