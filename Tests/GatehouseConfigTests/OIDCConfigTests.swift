import Foundation
import GatehouseAuth
import XCTest
@testable import GatehouseConfig

/// `jwt.issuers[].discovery` (SPEC §14.1): what the loader makes of it and every way it is refused.
final class OIDCConfigTests: ConfigFileTestCase {
    private let tail = """
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: all, match: { path: "/**" }, upstream: api }

        """

    private func load(_ issuer: String) throws -> ConfigLoadResult {
        try write("hs.key", String(repeating: "k", count: 40))
        let path = try write("gatehouse.yaml", "jwt:\n  issuers:\n" + issuer + tail)
        return ConfigLoader.load(path: path, cpuCount: 1, cwd: "/", environment: { _ in nil })
    }

    private func messages(_ issuer: String) throws -> [String] {
        try load(issuer).errors.map(\.message)
    }

    func testDiscoveryMakesARemoteSourceAtTheWellKnownURL() throws {
        let result = try load("""
                - name: sso
                  issuer: "https://sso.example.com/realms/main/"
                  algorithms: [RS256]
                  discovery: true

            """)
        XCTAssertEqual(result.errors.map(\.message), [])
        let remote = try XCTUnwrap(result.config?.jwt?.remoteJWKS)
        XCTAssertEqual(remote, [RemoteJWKS(issuer: "sso", url: "https://sso.example.com/realms/main/.well-known/openid-configuration",
                                           discoveryIssuer: "https://sso.example.com/realms/main/")])
    }

    func testDiscoveryFalseIsNoSource() throws {
        let result = try load("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256]
                  discovery: false
                  jwks_url: "https://sso.example.com/jwks"

            """)
        XCTAssertEqual(result.errors.map(\.message), [])
        XCTAssertEqual(result.config?.jwt?.remoteJWKS.map(\.discoveryIssuer), [nil])
    }

    func testDiscoveryNeedsAnIssuer() throws {
        let errors = try messages("""
                - name: sso
                  algorithms: [RS256]
                  discovery: true

            """)
        XCTAssertTrue(errors.contains { $0.contains("discovery needs issuer") }, "\(errors)")
    }

    func testDiscoveryNeedsAnHTTPIssuer() throws {
        for bad in ["urn:example:issuer", "https://user@sso.example.com", "ftp://sso.example.com", "https://"] {
            let errors = try messages("""
                    - name: sso
                      issuer: "\(bad)"
                      algorithms: [RS256]
                      discovery: true

                """)
            XCTAssertTrue(errors.contains { $0.contains("discovery needs an issuer that is an http:// or https:// URL") },
                          "\(bad): \(errors)")
        }
    }

    func testDiscoveryConflictsWithJWKSURLAndWithASecret() throws {
        let withURL = try messages("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256]
                  discovery: true
                  jwks_url: "https://sso.example.com/jwks"

            """)
        XCTAssertTrue(withURL.contains { $0.contains("cannot be combined with discovery: true") }, "\(withURL)")
        let withSecret = try messages("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256, HS256]
                  discovery: true
                  secret_file: hs.key

            """)
        XCTAssertTrue(withSecret.contains { $0.contains("replaces the issuer's whole key set") }, "\(withSecret)")
    }

    func testDiscoveryMustBeABoolean() throws {
        let errors = try messages("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256]
                  discovery: "yes please"

            """)
        XCTAssertFalse(errors.isEmpty)
    }

    func testDiscoveryCountsAsAKeySourceForAsymmetricAlgorithms() throws {
        let errors = try messages("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256, ES256, EdDSA]
                  discovery: true

            """)
        XCTAssertEqual(errors, [])
    }

    // MARK: - introspection

    private func introspecting(_ name: String, discovery: Bool = true, body: String = "{ client_id: gatehouse, client_secret_file: hs.key }") -> String {
        """
                - name: \(name)
                  issuer: "https://\(name).example.com"
                  algorithms: [RS256]
                  discovery: \(discovery)
                  introspection: \(body)

            """
    }

    func testIntrospectionSettingsAreRead() throws {
        let result = try load(introspecting("sso", body: "{ client_id: \"gate house\", client_secret_file: hs.key, cache: 5m }"))
        XCTAssertEqual(result.errors.map(\.message), [])
        let settings = try XCTUnwrap(result.config?.jwt?.introspection)
        XCTAssertEqual(settings.issuerName, "sso")
        XCTAssertEqual(settings.clientID, "gate house")
        XCTAssertEqual(settings.clientSecret, Array(String(repeating: "k", count: 40).utf8))
        XCTAssertEqual(settings.cacheSeconds, 300)
        // RFC 6749 §2.3.1: form-encoded, then Basic
        XCTAssertEqual(settings.authorization, "Basic " + Data("gate+house:\(String(repeating: "k", count: 40))".utf8).base64EncodedString())
    }

    func testIntrospectionDefaultsToOneMinuteOfCache() throws {
        XCTAssertEqual(try load(introspecting("sso")).config?.jwt?.introspection?.cacheSeconds, 60)
    }

    func testAtMostOneIssuerHasIntrospection() throws {
        let errors = try messages(introspecting("a") + introspecting("b"))
        XCTAssertTrue(errors.contains { $0.contains("only one issuer may have introspection") }, "\(errors)")
    }

    func testIntrospectionNeedsDiscoveryAndItsKeys() throws {
        let noDiscovery = try messages("""
                - name: sso
                  issuer: "https://sso.example.com"
                  algorithms: [RS256]
                  jwks_url: "https://sso.example.com/jwks"
                  introspection: { client_id: gatehouse, client_secret_file: hs.key }

            """)
        XCTAssertTrue(noDiscovery.contains { $0.contains("introspection needs discovery: true") }, "\(noDiscovery)")
        let missing = try messages(introspecting("sso", body: "{ cache: 10s }"))
        XCTAssertTrue(missing.contains { $0.contains("client_id") }, "\(missing)")
        XCTAssertTrue(missing.contains { $0.contains("client_secret_file") }, "\(missing)")
        let unknown = try messages(introspecting("sso", body: "{ client_id: g, client_secret_file: hs.key, client_secret: x }"))
        XCTAssertFalse(unknown.isEmpty)
        let absentFile = try messages(introspecting("sso", body: "{ client_id: g, client_secret_file: nope.secret }"))
        XCTAssertTrue(absentFile.contains { $0.contains("nope.secret") }, "\(absentFile)")
        let control = try messages(introspecting("sso", body: "{ client_id: \"a\\u0001b\", client_secret_file: hs.key }"))
        XCTAssertTrue(control.contains { $0.contains("client id") }, "\(control)")
        let empty = try messages(introspecting("sso", body: "{ client_id: \"\", client_secret_file: hs.key }"))
        XCTAssertTrue(empty.contains { $0.contains("client id") }, "\(empty)")
        let negative = try messages(introspecting("sso", body: "{ client_id: g, client_secret_file: hs.key, cache: -5s }"))
        XCTAssertFalse(negative.isEmpty)
    }

    // MARK: - sessions.oidc

    private func loadSessions(_ oidc: String, audiences: String = "[my-api]", publicOrigin: String? = "https://gw.example.com") throws -> ConfigLoadResult {
        try write("web.secret", "s3cret\n")
        let server = publicOrigin.map { "server: { public_origin: \"\($0)\" }\n" } ?? ""
        let path = try write("gatehouse.yaml", server + """
            jwt:
              issuers:
                - { name: sso, issuer: "https://sso.example.com", audiences: \(audiences), algorithms: [RS256], discovery: true }
            sessions:
              cookie: { secure: false }
              oidc: \(oidc)

            """ + tail)
        return ConfigLoader.load(path: path, cpuCount: 1, cwd: "/", environment: { _ in nil })
    }

    func testSessionsOIDCIsReadWithItsDefaults() throws {
        let result = try loadSessions("{ issuer: sso, client_id: web, client_secret_file: web.secret }")
        XCTAssertEqual(result.errors.map(\.message), [])
        XCTAssertFalse(result.problems.contains { $0.message.contains("no login block") }, "\(result.problems)")
        let oidc = try XCTUnwrap(result.config?.sessions?.oidc)
        XCTAssertEqual(oidc.issuerName, "sso")
        XCTAssertEqual(oidc.clientSecret, Array("s3cret".utf8))
        XCTAssertEqual(oidc.loginPath, "/oidc/login")
        XCTAssertEqual(oidc.callbackPath, "/oidc/callback")
        XCTAssertEqual(oidc.scopes, ["openid", "profile", "email"])
        XCTAssertNil(oidc.rolesClaim)
        XCTAssertEqual(result.config?.sessions?.endpoint(at: "/oidc/callback"), .oidcCallback)
    }

    func testSessionsOIDCHostileValues() throws {
        let cases: [(String, String)] = [
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, scopes: [profile] }", "must include openid"),
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, scopes: [openid, \"a b\"] }", "a scope is printable"),
            ("{ issuer: sso, client_id: \"w b\", client_secret_file: web.secret }", "client id"),
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, login_path: /logout }", "each gateway endpoint needs its own path"),
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, callback_path: \"/a/../b\" }", "normalized path"),
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, roles_claim: \"a..b\" }", "roles_claim"),
            ("{ issuer: sso, client_id: web }", "client_secret_file"),
            ("{ issuer: sso, client_id: web, client_secret_file: web.secret, extra: 1 }", "unknown key"),
        ]
        for (oidc, expected) in cases {
            let errors = try loadSessions(oidc).errors.map(\.message)
            XCTAssertTrue(errors.contains { $0.contains(expected) }, "\(oidc): \(errors)")
        }
    }

    func testSessionsOIDCCrossChecks() throws {
        let ok = "{ issuer: sso, client_id: web, client_secret_file: web.secret }"
        let withClient = try loadSessions(ok, audiences: "[web, my-api]").errors.map(\.message)
        XCTAssertTrue(withClient.contains { $0.contains("would pass as API tokens") }, "\(withClient)")
        let noAudiences = try loadSessions(ok, audiences: "null").errors.map(\.message)
        XCTAssertTrue(noAudiences.contains { $0.contains("must list audiences") }, "\(noAudiences)")
        let noOrigin = try loadSessions(ok, publicOrigin: nil).errors.map(\.message)
        XCTAssertTrue(noOrigin.contains { $0.contains("needs server.public_origin") }, "\(noOrigin)")
        let unknown = try loadSessions("{ issuer: nope, client_id: web, client_secret_file: web.secret }").errors.map(\.message)
        XCTAssertTrue(unknown.contains { $0.contains("unknown issuer \"nope\"; jwt.issuers has: sso") }, "\(unknown)")
    }
}
