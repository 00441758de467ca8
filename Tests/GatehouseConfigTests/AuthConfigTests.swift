import Foundation
import GatehouseAuth
import GatehouseCore
import GatehousePolicy
import XCTest
@testable import GatehouseConfig

/// The values built from the `jwt`, `identity_headers` and `cors` sections and from the routes'
/// `require`, `issuers`, `login_redirect` and `cors` keys.
final class AuthConfigTests: ConfigFileTestCase {
    private func load(_ path: String, environment: [String: String] = [:]) -> ConfigLoadResult {
        ConfigLoader.load(path: path, cpuCount: 1, cwd: "/", environment: { environment[$0] })
    }

    private func loadValid(_ path: String, environment: [String: String] = [:], file: StaticString = #filePath,
                           line: UInt = #line) throws -> GatewayConfig {
        let result = load(path, environment: environment)
        XCTAssertEqual(result.errors, [], file: file, line: line)
        return try XCTUnwrap(result.config, file: file, line: line)
    }

    private func goldenConfig() throws -> GatewayConfig {
        try loadValid("\(GoldenCheckTests.goldenDirectory)/jwt_valid_full.yaml")
    }

    private let routes = """
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: all, match: { path: "/**" }, upstream: api }

        """

    private func hmacIssuer(secretFile: String = "hs.key") -> String {
        """
        jwt:
          issuers:
            - name: local
              algorithms: [HS256]
              secret_file: \(secretFile)

        """
    }

    // MARK: - jwt

    func testVerifierHasEveryIssuerWithItsAlgorithmsAndKeys() throws {
        let jwt = try XCTUnwrap(try goldenConfig().jwt)
        let verifier = jwt.verifier
        XCTAssertEqual(verifier.rolesClaim, "realm_access.roles")
        XCTAssertEqual(verifier.leeway, 60)
        XCTAssertEqual(verifier.issuers.map(\.name), ["local", "idp", "remote"])
        XCTAssertEqual(verifier.issuers.map(\.issuer), ["https://local.test", "https://idp.test/", "https://remote.test"])
        XCTAssertEqual(verifier.issuers[0].audiences, ["gatehouse", "other-api"])
        XCTAssertNil(verifier.issuers[1].audiences)
        XCTAssertEqual(verifier.issuers[0].algorithms, [.hs256])
        // EdDSA admits Ed25519 too (RFC 9864).
        XCTAssertEqual(verifier.issuers[1].algorithms, [.rs256, .ps256, .es256, .es384, .eddsa, .ed25519])
        XCTAssertEqual(verifier.issuers[2].algorithms, [.es256])
    }

    func testKeysComeFromTheSecretFileAndTheJWKSFileAndURLIssuersStartEmpty() throws {
        let issuers = try XCTUnwrap(try goldenConfig().jwt).verifier.issuers
        XCTAssertEqual(issuers[0].keys.keys.map(\.keyType), [.oct])
        XCTAssertEqual(issuers[0].keys.keys.first?.sizeInBits, 47 * 8, "one trailing newline dropped")
        XCTAssertEqual(issuers[1].keys.keys.map(\.kid), ["rsa-1", "rsa-pss", "ec-256", "ec-384", "ed-1"])
        XCTAssertTrue(issuers[2].keys.isEmpty)
    }

    func testRemoteJWKSListsTheURLIssuersInOrder() throws {
        let jwt = try XCTUnwrap(try goldenConfig().jwt)
        XCTAssertEqual(jwt.remoteJWKS, [
            RemoteJWKS(issuer: "idp", url: "https://idp.test/.well-known/jwks.json"),
            RemoteJWKS(issuer: "remote", url: "http://jwks.internal:8080/jwks.json?tenant=a"),
        ])
    }

    func testJWTDefaultsAreRolesAndThirtySeconds() throws {
        try write("hs.key", String(repeating: "k", count: 32))
        let config = try loadValid(try write("gatehouse.yaml", hmacIssuer() + routes))
        let verifier = try XCTUnwrap(config.jwt).verifier
        XCTAssertEqual(verifier.rolesClaim, "roles")
        XCTAssertEqual(verifier.leeway, 30)
        XCTAssertNil(verifier.issuers[0].issuer, "a sole issuer may leave iss unchecked")
        XCTAssertEqual(config.jwt?.remoteJWKS, [])
    }

    func testZeroLeewayIsAllowed() throws {
        try write("hs.key", String(repeating: "k", count: 32))
        let text = hmacIssuer().replacingOccurrences(of: "jwt:\n", with: "jwt:\n  leeway: 0s\n") + routes
        XCTAssertEqual(try loadValid(try write("gatehouse.yaml", text)).jwt?.verifier.leeway, 0)
    }

    func testSecretFileDropsExactlyOneTrailingNewlineAndIsRelativeToTheConfigFolder() throws {
        try write("conf/keys/one.key", String(repeating: "a", count: 40) + "\n")
        try write("conf/keys/two.key", String(repeating: "b", count: 40) + "\n\n")
        try write("conf/keys/raw.key", String(repeating: "c", count: 40))
        for (file, bytes) in [("one.key", 40), ("two.key", 41), ("raw.key", 40)] {
            let path = try write("conf/gatehouse.yaml", hmacIssuer(secretFile: "keys/\(file)") + routes)
            let key = try XCTUnwrap(try loadValid(path).jwt?.verifier.issuers.first?.keys.keys.first)
            XCTAssertEqual(key.sizeInBits, bytes * 8, file)
        }
    }

    func testSecretEnvIsReadFromTheEnvironmentWhenLoading() throws {
        let text = """
            jwt:
              issuers:
                - { name: local, algorithms: [HS384], secret_env: GATEHOUSE_TEST_SECRET }

            """ + routes
        let path = try write("gatehouse.yaml", text)
        let secret = String(repeating: "s", count: 48)
        let key = try XCTUnwrap(try loadValid(path, environment: ["GATEHOUSE_TEST_SECRET": secret])
            .jwt?.verifier.issuers.first?.keys.keys.first)
        XCTAssertEqual(key.keyType, .oct)
        XCTAssertEqual(key.sizeInBits, 48 * 8)

        let unset = load(path)
        XCTAssertEqual(unset.errors.map(\.message),
                       ["jwt.issuers[0].secret_env: the environment variable GATEHOUSE_TEST_SECRET is not set"])
        let empty = load(path, environment: ["GATEHOUSE_TEST_SECRET": ""])
        XCTAssertEqual(empty.errors.count, 1)
        XCTAssertNil(empty.config)
    }

    func testNoMessageEverContainsTheSecret() throws {
        let secret = "hunter2-very-secret"
        try write("short.key", secret + "\n")
        let text = """
            jwt:
              issuers:
                - { name: a, issuer: "https://a.test", algorithms: [HS512], secret_file: short.key }
                - { name: b, issuer: "https://b.test", algorithms: [RS256], secret_env: SECRET }
                - { name: c, issuer: "https://c.test", algorithms: [HS256], secret_file: short.key, jwks_url: "https://x.test/" }

            """ + routes
        let result = load(try write("gatehouse.yaml", text), environment: ["SECRET": secret])
        XCTAssertFalse(result.problems.isEmpty)
        for problem in result.problems {
            XCTAssertFalse(problem.description.contains(secret), problem.description)
        }
    }

    func testNoJWTSectionMeansNoVerifier() throws {
        let config = try loadValid(try write("gatehouse.yaml", routes))
        XCTAssertNil(config.jwt)
        XCTAssertNil(config.cors)
    }

    // MARK: - identity_headers

    func testIdentityHeaderDefaults() throws {
        let headers = try loadValid(try write("gatehouse.yaml", routes)).identityHeaders
        XCTAssertEqual(headers.subject, "X-Auth-Subject")
        XCTAssertEqual(headers.roles, "X-Auth-Roles")
        XCTAssertEqual(headers.method, "X-Auth-Method")
        XCTAssertTrue(headers.claims.isEmpty)
        XCTAssertEqual(headers.allNames, ["x-auth-subject", "x-auth-roles", "x-auth-method"])
        XCTAssertEqual(IdentityHeaders().allNames, headers.allNames)
    }

    func testConfiguredIdentityHeadersKeepTheirOrderAndAllNamesAreLowercased() throws {
        let headers = try goldenConfig().identityHeaders
        XCTAssertEqual(headers.subject, "X-User")
        XCTAssertEqual(headers.roles, "X-User-Roles")
        XCTAssertEqual(headers.method, "X-User-Auth")
        XCTAssertEqual(headers.claims.map(\.header), ["X-User-Email", "X-User-Org", "X-User-Namespaced"])
        XCTAssertEqual(headers.claims.map(\.claim), ["email", "org.id", "https://example.com/tenant"])
        XCTAssertEqual(headers.allNames, ["x-user", "x-user-roles", "x-user-auth", "x-user-email", "x-user-org",
                                          "x-user-namespaced"])
    }

    func testAllNamesFollowsChangesToTheHeaders() {
        var headers = IdentityHeaders()
        headers.subject = "X-Sub"
        headers.claims = [("X-Email", "email")]
        XCTAssertEqual(headers.allNames, ["x-sub", "x-auth-roles", "x-auth-method", "x-email"])
    }

    // MARK: - routes

    func testRouteIndexIsThePositionInTheTableAcrossPolicyFiles() throws {
        try write("policies/more.yaml", """
            routes:
              - { name: p1, match: { path: "/p1" }, upstream: api, auth: none }
              - { name: p2, match: { path: "/p2" }, upstream: api, auth: none, require: ~ }

            """)
        let config = try loadValid(try write("gatehouse.yaml", """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: a, match: { path: "/a" }, upstream: api, auth: none }
              - { name: b, match: { path: "/b" }, upstream: api, auth: none }
            policy_files: ["policies/*.yaml"]

            """))
        let table = config.routes.routes
        XCTAssertEqual(table.map(\.name), ["a", "b", "p1", "p2"])
        XCTAssertEqual(table.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(config.requirements.count, 4)
    }

    func testRequirementsAreIndexedByRoute() throws {
        let config = try goldenConfig()
        let routes = config.routes.routes
        XCTAssertEqual(routes.map(\.index), Array(0..<routes.count))
        XCTAssertEqual(config.requirements.count, routes.count)
        let admin = try XCTUnwrap(routes.first { $0.name == "admin" })
        XCTAssertEqual(config.requirement(for: admin), Requirement(
            rolesAny: ["admin"], rolesAll: ["staff"], scopesAll: ["admin:write"],
            claims: [.init(path: "type", value: "admin"), .init(path: "org.id", value: 7),
                     .init(path: "verified", value: true)]))
        for route in routes where route.name != "admin" {
            XCTAssertNil(config.requirement(for: route), route.name)
        }
    }

    func testQuotedNumberInAClaimConditionIsAString() throws {
        try write("hs.key", String(repeating: "k", count: 32))
        let config = try loadValid(try write("gatehouse.yaml", hmacIssuer() + """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: a, match: { path: "/a" }, upstream: api, require: { claims: { org: "7", level: 3 } } }

            """))
        let requirement = try XCTUnwrap(config.requirement(for: config.routes.routes[0]))
        XCTAssertEqual(requirement.claims, [.init(path: "org", value: .string("7")), .init(path: "level", value: 3)])
    }

    func testRouteIssuersAndLoginRedirect() throws {
        let routes = try goldenConfig().routes.routes
        let byName = Dictionary(uniqueKeysWithValues: routes.map { ($0.name, $0) })
        XCTAssertEqual(byName["admin"]?.issuers, ["idp"])
        XCTAssertEqual(byName["api"]?.issuers, ["local", "remote"])
        XCTAssertNil(byName["public-docs"]?.issuers)
        XCTAssertEqual(byName["app-pages"]?.loginRedirect, "/login.html?next=app")
        XCTAssertEqual(byName["partner"]?.loginRedirect, "https://login.example.com/start")
        XCTAssertNil(byName["admin"]?.loginRedirect)
    }

    func testRouteCORSInheritsIsDisabledOrReplacesTheGlobalPolicy() throws {
        let config = try goldenConfig()
        let global = try XCTUnwrap(config.cors)
        XCTAssertEqual(global.allowMethods, ["GET", "POST", "PUT", "PATCH", "DELETE"])
        XCTAssertEqual(global.allowHeaders, ["Authorization", "Content-Type"])
        XCTAssertEqual(global.exposeHeaders, ["X-Request-Id"])
        XCTAssertTrue(global.allowCredentials)
        XCTAssertEqual(global.maxAgeSeconds, 3600)

        let byName = Dictionary(uniqueKeysWithValues: config.routes.routes.map { ($0.name, $0) })
        let docs = try XCTUnwrap(byName["public-docs"])
        guard case .disabled = docs.cors else { return XCTFail("public-docs: \(docs.cors)") }
        XCTAssertNil(config.corsPolicy(for: docs))

        let partner = try XCTUnwrap(byName["partner"])
        guard case .custom(let own) = partner.cors else { return XCTFail("partner: \(partner.cors)") }
        // A route's block replaces the global one entirely: its unset keys take the defaults.
        XCTAssertEqual(own.allowMethods, ["GET", "HEAD", "POST"])
        XCTAssertEqual(own.allowHeaders, [])
        XCTAssertFalse(own.allowCredentials)
        XCTAssertEqual(own.maxAgeSeconds, 600)
        XCTAssertEqual(config.corsPolicy(for: partner), own)

        let admin = try XCTUnwrap(byName["admin"])
        guard case .inherit = admin.cors else { return XCTFail("admin: \(admin.cors)") }
        XCTAssertEqual(config.corsPolicy(for: admin), global)
    }

    func testRouteDefaultsForTheNewKeys() throws {
        let route = try XCTUnwrap(try loadValid(try write("gatehouse.yaml", routes)).routes.routes.first)
        XCTAssertNil(route.issuers)
        XCTAssertNil(route.loginRedirect)
        guard case .inherit = route.cors else { return XCTFail("\(route.cors)") }
    }

    func testRouteThatNeedsACallerWithoutJWTWarnsOnce() throws {
        let result = load(try write("gatehouse.yaml", """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: a, match: { path: "/a" }, upstream: api, require: { roles_any: [x] }, auth: required }
              - { name: b, match: { path: "/b" }, upstream: api, auth: none }

            """))
        XCTAssertEqual(result.warnings.map(\.message),
                       ["routes[0]: no authenticator is configured: this route answers 401 to every request"])
        XCTAssertNotNil(result.config)
    }

    func testConfigBuiltByHandHasNoRequirements() {
        let route = Route(name: "r", match: RouteMatch(path: try! Glob("/**"), methods: nil, host: nil), upstream: "api",
                          location: SourceLocation(file: "x"), index: 5)
        let config = GatewayConfig(path: "x", server: ServerSettings(
            listen: [], workers: 1, maxHeaderBytes: 1, maxBodyBytes: 1, readTimeoutMs: 1, shutdownGraceMs: 1,
            trustedProxies: [], publicOrigin: nil, pathPolicy: .strict), admin: nil, upstreams: [:],
            routes: RouteTable([route]), accessLog: AccessLogSettings())
        XCTAssertNil(config.requirement(for: route))
        XCTAssertNil(config.corsPolicy(for: route))
        XCTAssertNil(config.jwt)
        XCTAssertEqual(config.identityHeaders.subject, "X-Auth-Subject")
    }
}
