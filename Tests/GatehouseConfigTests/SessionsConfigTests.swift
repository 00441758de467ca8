import Foundation
import GatehouseSessions
import XCTest
@testable import GatehouseConfig

/// The values built from the `sessions` section: defaults, the store URL, roles, the password
/// verifier over the users file, and the gateway endpoint paths.
final class SessionsConfigTests: ConfigFileTestCase {
    private func load(_ path: String, cwd: String = "/") -> ConfigLoadResult {
        ConfigLoader.load(path: path, cpuCount: 1, cwd: cwd, environment: { _ in nil })
    }

    private func loadValid(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> GatewayConfig {
        let result = load(path)
        XCTAssertEqual(result.errors, [], file: file, line: line)
        return try XCTUnwrap(result.config, file: file, line: line)
    }

    private func goldenSessions() throws -> SessionSettings {
        try XCTUnwrap(try loadValid("\(GoldenCheckTests.goldenDirectory)/sessions_valid_full.yaml").sessions)
    }

    /// The users of Golden/users/users.htpasswd (made with `htpasswd -B -C 5`).
    private var goldenUsers: String { try! String(contentsOfFile: "\(GoldenCheckTests.goldenDirectory)/users/users.htpasswd", encoding: .utf8) }

    private let routes = """
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: api, match: { path: "/api/**" }, upstream: api }

        """

    // MARK: - Defaults

    func testNoSessionsSectionOrANullOneMeansNoSessions() throws {
        XCTAssertNil(try loadValid(try write("none.yaml", routes)).sessions)
        XCTAssertNil(try loadValid(try write("null.yaml", "sessions:\n" + routes)).sessions)
    }

    func testEmptySessionsSectionHasEveryDefaultAndNoLogin() throws {
        let sessions = try XCTUnwrap(try loadValid(try write("gatehouse.yaml", "sessions: {}\n" + routes)).sessions)
        XCTAssertEqual(sessions.cookie, SessionCookie(name: "gatehouse_session", path: "/", domain: nil, secure: true,
                                                      sameSite: .lax))
        XCTAssertEqual(sessions.idleTimeout, 30 * 60)
        XCTAssertEqual(sessions.absoluteTimeout, 12 * 3600)
        XCTAssertEqual(sessions.store, .memory)
        XCTAssertNil(sessions.login)
        XCTAssertEqual(sessions.keepalivePath, "/keepalive")
        XCTAssertEqual(sessions.logoutPath, "/logout")
        XCTAssertNil(sessions.endpoint(at: "/login"), "no login block, no login endpoint")
        XCTAssertEqual(sessions.endpoint(at: "/keepalive"), .keepalive)
        XCTAssertEqual(sessions.endpoint(at: "/logout"), .logout)
        XCTAssertNil(sessions.endpoint(at: "/logout/"))
    }

    func testLoginDefaultsAndTheUsersFileIsRelativeToTheConfigFolderAndStoredAbsolute() throws {
        try write("conf/users.htpasswd", goldenUsers)
        let path = try write("conf/gatehouse.yaml", """
            sessions:
              cookie: { secure: false }
              login: { users_file: users.htpasswd }
            \(routes)
            """)
        let result = load(path)
        XCTAssertEqual(result.problems, [])
        let sessions = try XCTUnwrap(result.config?.sessions)
        let login = try XCTUnwrap(sessions.login)
        XCTAssertEqual(login.path, "/login")
        XCTAssertEqual(login.maxFailures, 5)
        XCTAssertEqual(login.failureWindow, 15 * 60)
        XCTAssertEqual(login.roles, [:])
        XCTAssertEqual(login.roles(of: "alice"), [])
        XCTAssertEqual(login.usersFile, "\(directory)/conf/users.htpasswd")
        XCTAssertEqual(Set(login.verifier.users.keys), ["alice", "bob", "carol"])
        XCTAssertEqual(sessions.endpoint(at: "/login"), .login)
    }

    // MARK: - The full golden config

    func testEveryKeyOfTheGoldenConfigIsRead() throws {
        let sessions = try goldenSessions()
        XCTAssertEqual(sessions.cookie, SessionCookie(name: "app_session", path: "/", domain: "example.com",
                                                      secure: false, sameSite: .strict))
        XCTAssertEqual(sessions.idleTimeout, 20 * 60)
        XCTAssertEqual(sessions.absoluteTimeout, 8 * 3600)
        XCTAssertEqual(sessions.store, .redis(host: "redis.internal", port: 6380, db: 2, password: "s3cret@pw"))
        XCTAssertEqual(sessions.keepalivePath, "/auth/keepalive")
        XCTAssertEqual(sessions.logoutPath, "/auth/logout")
        let login = try XCTUnwrap(sessions.login)
        XCTAssertEqual(login.path, "/auth/login")
        XCTAssertEqual(login.maxFailures, 3)
        XCTAssertEqual(login.failureWindow, 600)
        XCTAssertEqual(login.usersFile, "\(GoldenCheckTests.goldenDirectory)/users/users.htpasswd")
        XCTAssertEqual(sessions.endpoint(at: "/auth/login"), .login)
        XCTAssertEqual(sessions.endpoint(at: "/auth/keepalive"), .keepalive)
        XCTAssertEqual(sessions.endpoint(at: "/auth/logout"), .logout)
        XCTAssertNil(sessions.endpoint(at: "/login"))
    }

    func testRolesMapUsersToTheirRolesAndAUserWithoutAnEntryHasNone() throws {
        let login = try XCTUnwrap(try goldenSessions().login)
        XCTAssertEqual(login.roles, ["alice": ["admin", "reader"], "bob": ["reader"], "carol": []])
        XCTAssertEqual(login.roles(of: "alice"), ["admin", "reader"])
        XCTAssertEqual(login.roles(of: "carol"), [])
        XCTAssertEqual(login.roles(of: "nobody"), [])
    }

    func testVerifierChecksTheFixturePasswords() throws {
        let verifier = try XCTUnwrap(try goldenSessions().login).verifier
        XCTAssertTrue(verifier.check(user: "alice", password: Array("alice in wonderland".utf8)))
        XCTAssertTrue(verifier.check(user: "bob", password: Array("bob the builder".utf8)))
        XCTAssertFalse(verifier.check(user: "alice", password: Array("bob the builder".utf8)))
        XCTAssertFalse(verifier.check(user: "mallory", password: Array("alice in wonderland".utf8)))
        // The dummy hash for unknown users costs what the users' hashes cost (bcrypt, cost 5).
        XCTAssertTrue(verifier.dummyHash.hasPrefix("$2b$05$"), verifier.dummyHash)
    }

    func testRepeatedRolesAreKeptOnce() throws {
        try write("users.htpasswd", goldenUsers)
        let path = try write("gatehouse.yaml", """
            sessions:
              cookie: { secure: false }
              login: { users_file: users.htpasswd, roles: { alice: [admin, admin, reader] } }
            \(routes)
            """)
        XCTAssertEqual(try loadValid(path).sessions?.login?.roles, ["alice": ["admin", "reader"]])
    }

    // MARK: - Endpoints

    func testFalseTurnsAnEndpointOffAndTrueIsAnError() throws {
        let off = try XCTUnwrap(try loadValid(try write("off.yaml", """
            sessions: { cookie: { secure: false }, keepalive_path: false, logout_path: false }
            \(routes)
            """)).sessions)
        XCTAssertNil(off.keepalivePath)
        XCTAssertNil(off.logoutPath)
        XCTAssertNil(off.endpoint(at: "/keepalive"))

        let result = load(try write("true.yaml", "sessions: { keepalive_path: true }\n" + routes))
        XCTAssertEqual(result.errors.map(\.message),
                       ["sessions.keepalive_path: true is not a path: write a path like /keepalive, or false to turn the endpoint off"])
    }

    func testEndpointPathsMustBeNormalizedPaths() {
        for path in ["/login", "/auth/login", "/a/b/", "/", "/sign-in_2~x", "/caf%C3%A9"] {
            XCTAssertNil(EndpointPath.problem(path), path)
        }
        for path in ["login", "", "//login", "/a//b", "/a/./b", "/a/../b", "/%41", "/a%2fb", "/a;b", "/a?b", "/a b",
                     "/a#b", "http://host/login"] {
            XCTAssertNotNil(EndpointPath.problem(path), path)
        }
    }

    func testCookiePathMatchFollowsRFC6265() {
        let cases: [(cookie: String, request: String, matches: Bool)] = [
            ("/", "/logout", true), ("/app", "/app", true), ("/app", "/app/logout", true),
            ("/app/", "/app/logout", true), ("/app", "/apple", false), ("/app/", "/app", false),
            ("/app", "/logout", false),
        ]
        for c in cases {
            XCTAssertEqual(SessionCookieSection.pathMatches(cookiePath: c.cookie, requestPath: c.request), c.matches,
                           "\(c.cookie) vs \(c.request)")
        }
    }

    func testSessionsAreAnAuthenticatorForRoutes() throws {
        let result = load(try write("gatehouse.yaml", """
            sessions: { cookie: { secure: false }, store: "redis://127.0.0.1" }
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: api, match: { path: "/api/**" }, upstream: api }
              - { name: maybe, match: { path: "/maybe/**" }, upstream: api, auth: optional }
            """))
        // The one warning: without a login block no users file vouches for a session (SPEC §3.2).
        XCTAssertEqual(result.problems.map(\.message),
                       ["sessions: no login block: this instance has no users file to check sessions against and refuses every session cookie"],
                       "no 'no authenticator' warnings with sessions and no jwt")
    }

    // MARK: - Store

    func testRedisURLForms() {
        let cases: [(String, SessionStoreSetting)] = [
            ("memory", .memory),
            ("redis://127.0.0.1:6379/0", .redis(host: "127.0.0.1", port: 6379, db: 0, password: nil)),
            ("redis://redis.internal", .redis(host: "redis.internal", port: 6379, db: 0, password: nil)),
            ("REDIS://Redis.Internal:6380/", .redis(host: "redis.internal", port: 6380, db: 0, password: nil)),
            ("redis://:pw@h/3", .redis(host: "h", port: 6379, db: 3, password: "pw")),
            ("redis://default:p%40ss%2Fw%25@h:7000", .redis(host: "h", port: 7000, db: 0, password: "p@ss/w%")),
            ("redis://:p@ss@h", .redis(host: "h", port: 6379, db: 0, password: "p@ss")),
            ("redis://[::1]:6379/15", .redis(host: "::1", port: 6379, db: 15, password: nil)),
        ]
        for (text, expected) in cases {
            switch AddressSyntax.sessionStore(text) {
            case .success(let store): XCTAssertEqual(store, expected, text)
            case .failure(let error): XCTFail("\(text): \(error.message)")
            }
        }
    }

    func testBadStoresAreRefusedWithoutRepeatingThePassword() {
        let cases: [(text: String, message: String)] = [
            ("Memory", "expected memory or a URL like redis://127.0.0.1:6379/0, got \"Memory\""),
            ("memcached://h", "expected memory or a URL like redis://127.0.0.1:6379/0, got \"memcached://h\""),
            ("postgres://u:topsecret@db", "expected memory or a URL like redis://127.0.0.1:6379/0, got \"postgres://***@db\""),
            ("rediss://:topsecret@h", "rediss:// (Redis over TLS): not supported yet"),
            ("redis://", "expected memory or a URL like redis://127.0.0.1:6379/0, got \"redis://\""),
            ("redis://topsecret@h", "a Redis URL holds a password, not a user name: write redis://:PASSWORD@host"),
            ("redis://app:topsecret@h", "Redis ACL users other than \"default\": not supported yet; write redis://:PASSWORD@host"),
            ("redis://:@h", "the Redis password after \":\" is empty"),
            ("redis://:top%zzsecret@h",
             "the Redis password is not valid percent-encoded text (write % as %25, @ as %40, / as %2F)"),
            ("redis://:topsecret@h:0", "port must be a number from 1 to 65535, got \"0\""),
            ("redis://:topsecret@::1", "an IPv6 address needs brackets, like redis://[::1]:6379/0, got \"::1\""),
            ("redis://h/db", "expected a database number after the host, like /0, got \"/db\""),
            ("redis://h/0?password=topsecret",
             "a Redis URL here has no query or fragment (write the password as redis://:PASSWORD@host)"),
            ("redis://:topsecret@bad_host!", "invalid host name \"bad_host!\""),
        ]
        for c in cases {
            switch AddressSyntax.sessionStore(c.text) {
            case .success(let store): XCTFail("\(c.text) accepted as \(store)")
            case .failure(let error):
                XCTAssertEqual(error.message, c.message, c.text)
                XCTAssertFalse(error.message.contains("topsecret"), c.text)
            }
        }
    }

    func testStoreDescriptionMasksThePassword() {
        XCTAssertEqual(SessionStoreSetting.memory.description, "memory")
        XCTAssertEqual(SessionStoreSetting.redis(host: "::1", port: 6379, db: 1, password: "x").description,
                       "redis://:***@[::1]:6379/1")
        XCTAssertEqual(SessionStoreSetting.redis(host: "h", port: 6380, db: 0, password: nil).description,
                       "redis://h:6380/0")
    }

    // MARK: - Users file

    func testAUsersFileWithProblemsGivesNoConfigAndNoRoleWarnings() throws {
        try write("users.htpasswd", "alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
        let path = try write("gatehouse.yaml", """
            sessions:
              cookie: { secure: false }
              login: { users_file: users.htpasswd, roles: { alice: [admin] } }
            \(routes)
            """)
        let result = load(path)
        XCTAssertNil(result.config)
        XCTAssertEqual(result.problems.map(\.description), [
            "users.htpasswd:1:7: error: user \"alice\": SHA-1 ({SHA}) is refused: \(PasswordScheme.acceptedSchemes)",
        ])
    }

    func testAUsersFileThatIsNotTextIsAnErrorAtTheKey() throws {
        try Data([0x61, 0x3A, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: "\(directory)/users.htpasswd"))
        let path = try write("gatehouse.yaml", "sessions:\n  login: { users_file: users.htpasswd }\n" + routes)
        XCTAssertEqual(load(path).errors.map(\.message),
                       ["sessions.login.users_file: cannot read \"users.htpasswd\": not UTF-8 text"])
    }
}
