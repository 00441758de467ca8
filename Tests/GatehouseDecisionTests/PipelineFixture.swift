import Crypto
import Foundation
import XCTest
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehousePolicy
import GatehouseSessions
@testable import GatehouseDecision

/// One config for the pipeline tables, loaded from YAML as `gatehouse run` loads it (with its
/// key and users files in a temporary folder), and the helpers that drive the pipeline from
/// plain header arrays, as a front-end does.
enum PipelineFixture {
    static let now: Int64 = 1_900_000_000
    static let secret = "test-only-hs256-secret-0123456789abcdef"
    static let remoteSecret = "remote-hs256-secret-0123456789abcdef0123"
    static let publicOrigin = "https://gw.example.com"
    static let appOrigin = "https://app.example.com"
    static let partnerOrigin = "https://partner.example.net"
    static let evilOrigin = "https://evil.example.org"
    static let cookieName = "gh_session"
    static let cookie = String(repeating: "A", count: 43)

    static let yaml = """
        server:
          public_origin: "\(publicOrigin)"
        jwt:
          issuers:
            - { name: local, issuer: "https://local.test", audiences: [gatehouse], algorithms: [HS256], secret_file: hs256.key }
            - { name: other, issuer: "https://other.test", algorithms: [HS256], secret_file: hs256.key }
            - { name: remote, issuer: "https://remote.test", algorithms: [ES256], jwks_file: remote.json,
                jwks_url: "http://127.0.0.1:9/jwks.json" }
            - { name: empty, issuer: "https://empty.test", algorithms: [ES256], jwks_url: "http://127.0.0.1:9/e.json" }
        cors:
          allow_origins: ["\(appOrigin)"]
          allow_methods: [GET, POST, PUT]
          allow_headers: [Authorization, Content-Type]
          allow_credentials: true
        identity_headers:
          claims: { X-Auth-Email: email }
        sessions:
          cookie: { name: \(cookieName), secure: false }
          login:
            path: /auth/login
            users_file: users.htpasswd
            roles: { alice: [admin, reader], bob: [reader] }
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: public, match: { path: "/public/**" }, upstream: api, auth: none }
          - { name: admin, match: { path: "/admin/**" }, upstream: api, require: { roles_any: [admin] } }
          - { name: admin401, match: { path: "/admin401/**" }, upstream: api, require: { roles_any: [admin] }, deny_status: 401 }
          - { name: scoped, match: { path: "/scoped/**" }, upstream: api, require: { scopes_all: [write] } }
          - { name: claimed, match: { path: "/claimed/**" }, upstream: api, require: { claims: { tier: gold } } }
          - { name: app, match: { path: "/app/**", methods: [GET] }, upstream: api, login_redirect: "/auth/login.html" }
          - { name: opt, match: { path: "/opt/**" }, upstream: api, auth: optional }
          - { name: other-only, match: { path: "/other/**" }, upstream: api, issuers: [other] }
          - { name: partner, match: { path: "/partner/**" }, upstream: api,
              cors: { allow_origins: ["\(partnerOrigin)"], allow_credentials: true } }
          - { name: live, match: { path: "/live/**" }, upstream: api, websocket: true, require: { roles_any: [reader] } }
          - { name: live-open, match: { path: "/live-open/**" }, upstream: api, websocket: true, auth: none }
          - { name: nocors, match: { path: "/nocors/**" }, upstream: api, cors: false }
          - { name: limited, match: { path: "/limited/**" }, upstream: api, auth: optional,
              rate_limit: { rate: 1/s, burst: 2, key: subject } }
          - { name: limited-public, match: { path: "/limited-public/**" }, upstream: api, auth: none,
              rate_limit: { rate: 10/m, burst: 1, key: client } }
          - { name: limited-keyed, match: { path: "/keyed/**" }, upstream: api, auth: none,
              rate_limit: { rate: 5/h, burst: 3, key: "header:X-Api-Key" } }
          - { name: shadow, match: { path: "/shadow/**" }, upstream: api, mode: shadow, require: { roles_any: [admin] },
              cors: { allow_origins: ["\(partnerOrigin)"], allow_credentials: true } }
          - { name: shadow-app, match: { path: "/shadow-app/**" }, upstream: api, mode: shadow,
              login_redirect: "/auth/login.html" }
          - { name: enforced, match: { path: "/enforced/**" }, upstream: api, mode: enforce, require: { roles_any: [admin] } }
          - { name: shadow-limited, match: { path: "/shadow-limited/**" }, upstream: api, mode: shadow,
              rate_limit: { rate: 1/s, burst: 1, key: subject } }
          - { name: api, match: { path: "/api/**" }, upstream: api }
        """

    static let users = """
        alice:$2y$05$vRUIC.G0neSXNrJGfkYkxOXZ8NIFwjnxNbY726xejDaiV7fCAgR12
        bob:$2y$05$yJxiKzVRnhnDRe61Lz.GMuPNmPHxonmoh8fng3ZsuzyDKFmlyyiP2
        carol:$2y$05$ffGybdcgn6TX2lPTUWJcke5aSwC3eYUObQpSYAzZsjfyAIi3rAche

        """

    /// The config, loaded once.
    static let config: GatewayConfig = {
        let directory = NSTemporaryDirectory() + "gatehouse-decision-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let raw = remoteKey.publicKey.rawRepresentation  // x || y
        let jwk = #"{"kty":"EC","crv":"P-256","kid":"r1","x":"\#(b64(raw.prefix(32)))","y":"\#(b64(raw.suffix(32)))"}"#
        let files = ["gatehouse.yaml": yaml, "hs256.key": secret, "users.htpasswd": users,
                     "remote.json": #"{"keys":[\#(jwk)]}"#]
        for (name, text) in files { try! text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8) }
        let result = ConfigLoader.load(path: "\(directory)/gatehouse.yaml", cpuCount: 1)
        guard let config = result.config else { fatalError("fixture config: \(result.problems)") }
        return config
    }()

    // MARK: tokens (HS256, RFC 7515)

    static func b64(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func token(iss: String = "https://local.test", roles: [String] = ["reader"], extra: String = "",
                      header: String = #"{"alg":"HS256"}"#, secret: String = secret, exp: Int64 = now + 600,
                      aud: String = "gatehouse") -> String {
        let roleList = roles.map { "\"\($0)\"" }.joined(separator: ",")
        let claims = #"{"iss":"\#(iss)","sub":"alice","aud":"\#(aud)","exp":\#(exp),"roles":[\#(roleList)]\#(extra)}"#
        let input = b64(Data(header.utf8)) + "." + b64(Data(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return input + "." + b64(Data(mac))
    }

    /// The key of the `remote` issuer (a `jwks_file` beside its `jwks_url`).
    static let remoteKey = P256.Signing.PrivateKey()

    /// An ES256 token of the `remote` issuer with `kid`.
    static func remoteToken(kid: String) -> String {
        let header = #"{"alg":"ES256","kid":"\#(kid)"}"#
        let claims = #"{"iss":"https://remote.test","sub":"alice","exp":\#(now + 600)}"#
        let input = b64(Data(header.utf8)) + "." + b64(Data(claims.utf8))
        let signature = try! remoteKey.signature(for: Data(input.utf8))
        return input + "." + b64(signature.rawRepresentation)
    }

    static func bearer(_ token: String) -> (String, String) { ("Authorization", "Bearer " + token) }
    static var sessionCookie: (String, String) { ("Cookie", "theme=dark; \(cookieName)=\(cookie)") }

    static func record(_ subject: String, lastSeen: Int64 = now - 10, revoked: Bool = false,
                       absoluteExpiry: Int64 = now + 3600) -> SessionRecord {
        SessionRecord(idHash: String(repeating: "a", count: 64), subject: subject, roles: [], createdAt: now - 100,
                      lastSeen: lastSeen, absoluteExpiry: absoluteExpiry, revoked: revoked)
    }
}
