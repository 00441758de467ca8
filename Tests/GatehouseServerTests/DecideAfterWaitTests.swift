import Crypto
import Foundation
import XCTest
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
import GatehousePolicy
import GatehouseSessions
import GatehouseDecision
@testable import GatehouseServer

/// The pure decisions around the asynchronous waits (SPEC §3 snapshot rule, §3.2 "Sessions
/// follow the users file" and "Keys"): what a session-cookie request is decided on once the
/// store answered, and when a Bearer token waits for its issuer's keys and what it is decided
/// with afterwards.
final class DecideAfterWaitTests: XCTestCase {
    // MARK: fixtures

    static let now: Int64 = 1_900_000_000

    static func route(_ name: String, _ path: String, index: Int, auth: AuthRequirement = .required,
                      loginRedirect: String? = nil) -> Route {
        Route(name: name, match: RouteMatch(path: try! Glob(path), methods: nil, host: nil), upstream: "api", auth: auth,
              location: SourceLocation(file: "t.yaml", line: index + 1, column: 1), index: index, loginRedirect: loginRedirect)
    }

    static func config(routes: [(Route, Requirement?)], sessions: SessionSettings? = nil, jwt: JWTSettings? = nil) -> GatewayConfig {
        let server = ServerSettings(listen: [], workers: 2, maxHeaderBytes: 16384, maxBodyBytes: 1 << 20, readTimeoutMs: 5000,
                                    shutdownGraceMs: 1000, trustedProxies: [], publicOrigin: nil, pathPolicy: .strict)
        return GatewayConfig(path: "t.yaml", server: server, admin: nil, upstreams: ["api": UpstreamSettings(name: "api", targets: [])],
                             routes: RouteTable(routes.map(\.0)), accessLog: AccessLogSettings(), jwt: jwt,
                             requirements: routes.map(\.1), sessions: sessions)
    }

    static func login(users: [String], roles: [String: [String]]) -> LoginSettings {
        let hashes = Dictionary(uniqueKeysWithValues: users.map { ($0, "$2b$05$abcdefghijklmnopqrstuu5dcq8DVV2CqjBFoYgGCVC8/3CZ0rGHeG") })
        return LoginSettings(verifier: PasswordVerifier(users: hashes, dummyHash: "$2b$05$x"), roles: roles, usersFile: "users")
    }

    static func facts(_ path: String, method: String = "GET", authorization: String? = nil, accept: String? = nil) -> RequestFacts {
        RequestFacts(method: method, target: NormalizedTarget(path: path, query: nil, authority: nil), host: "gw.test",
                     authorization: authorization, accept: accept)
    }

    static func record(_ subject: String, roles: [String] = [], lastSeen: Int64 = now - 10, revoked: Bool = false,
                       absoluteExpiry: Int64 = now + 3600) -> SessionRecord {
        SessionRecord(idHash: String(repeating: "a", count: 64), subject: subject, roles: roles, createdAt: now - 100,
                      lastSeen: lastSeen, absoluteExpiry: absoluteExpiry, revoked: revoked)
    }

    /// Short for the outcome of a plan, for table rows.
    enum Outcome: Equatable {
        case forward(route: String, subject: String?, roles: [String])
        case refuse(status: Int, reason: Reason, route: String?)
        case redirect(reason: Reason)
        case needsKeys(route: String, issuer: String)
        case needsSession(route: String, hasRequirement: Bool)
        case needsIntrospection(route: String)
        case preflight
        case needsRateLimit(route: String)
    }

    static func outcome(_ plan: Plan) -> Outcome {
        switch plan {
        case let .forward(f): return .forward(route: f.route.name, subject: f.identity?.subject, roles: f.identity?.roles ?? [])
        case let .refuse(r): return .refuse(status: r.status, reason: r.reason, route: r.route?.name)
        case let .redirect(r): return .redirect(reason: r.credentials)
        case let .needsKeys(route, issuer): return .needsKeys(route: route.name, issuer: issuer)
        case let .needsSession(wait): return .needsSession(route: wait.route.name, hasRequirement: wait.requirement != nil)
        case let .needsIntrospection(wait): return .needsIntrospection(route: wait.route.name)
        case .preflight: return .preflight
        case let .needsRateLimit(check): return .needsRateLimit(route: check.forward.route.name)
        }
    }

    // MARK: sessions follow the users file (SPEC §3.2)

    func testSessionDecisionReadsTheUsersFileAndRolesOfTheRequestsOwnConfig() {
        let admin = Self.route("admin", "/admin/**", index: 0)
        let wait = SessionWait(route: admin, requirement: Requirement(rolesAny: ["admin"]), idHash: "h")
        let open = SessionWait(route: Self.route("api", "/api/**", index: 1), requirement: nil, idHash: "h")
        let browser = SessionWait(route: Self.route("app", "/app/**", index: 2, loginRedirect: "/login-page"), requirement: nil, idHash: "h")
        let sessions = SessionSettings(login: Self.login(users: ["alice", "bob"], roles: ["alice": ["admin"], "bob": ["reader"]]))
        let noLogin = SessionSettings(login: nil)
        let rows: [(String, Result<SessionRecord?, SessionStoreError>, SessionWait, SessionSettings?, Outcome)] = [
            ("an admin today is forwarded with today's roles",
             .success(Self.record("alice", roles: [])), wait, sessions, .forward(route: "admin", subject: "alice", roles: ["admin"])),
            ("roles copied at login are not what counts: a role taken away is a 403",
             .success(Self.record("bob", roles: ["admin"])), wait, sessions,
             .refuse(status: 403, reason: .insufficientRole, route: "admin")),
            ("a user no longer in the users file is refused as revoked, even on a route without require",
             .success(Self.record("mallory", roles: ["admin"])), open, sessions,
             .refuse(status: 401, reason: .sessionRevoked, route: "api")),
            ("a removed user's session on a route that needed their role: revoked, not forbidden",
             .success(Self.record("mallory", roles: ["admin"])), wait, sessions,
             .refuse(status: 401, reason: .sessionRevoked, route: "admin")),
            ("a removed user in a browser on a login_redirect route is sent to log in",
             .success(Self.record("mallory")), browser, sessions, .redirect(reason: .sessionRevoked)),
            ("a config without a login block has no users file to vouch for anyone",
             .success(Self.record("alice", roles: ["admin"])), open, noLogin,
             .refuse(status: 401, reason: .sessionRevoked, route: "api")),
            ("a config without sessions at all knows no session",
             .success(Self.record("alice")), open, nil, .refuse(status: 401, reason: .sessionUnknown, route: "api")),
            ("the store down is a 503", .failure(.timeout()), wait, sessions,
             .refuse(status: 503, reason: .sessionStoreDown, route: "admin")),
            ("an unknown session", .success(nil), wait, sessions, .refuse(status: 401, reason: .sessionUnknown, route: "admin")),
            ("a logged-out session stays revoked whatever the users file says",
             .success(Self.record("alice", revoked: true)), wait, sessions,
             .refuse(status: 401, reason: .sessionRevoked, route: "admin")),
            ("an expired session of a removed user is expired (checked first)",
             .success(Self.record("mallory", absoluteExpiry: Self.now)), wait, sessions,
             .refuse(status: 401, reason: .sessionExpired, route: "admin")),
            ("a user with a comma-free role list of none passes a route without require",
             .success(Self.record("bob")), open, SessionSettings(login: Self.login(users: ["bob"], roles: [:])),
             .forward(route: "api", subject: "bob", roles: [])),
        ]
        for (name, lookup, wait, sessions, expected) in rows {
            let plan = Decide.plan(afterSession: lookup, wait: wait, facts: Self.facts("/x", accept: "text/html"),
                                   config: Self.config(routes: [], sessions: sessions), now: Self.now)
            XCTAssertEqual(Self.outcome(plan), expected, name)
        }
    }

    func testSessionRolesTable() {
        let login = Self.login(users: ["alice", "bob", "carol"], roles: ["alice": ["admin", "ops"], "bob": ["reader"], "eve": ["admin"]])
        let rows: [(String, LoginSettings?, [String]?)] = [
            ("alice", login, ["admin", "ops"]),
            ("bob", login, ["reader"]),
            ("carol", login, []),          // in the users file, no roles entry
            ("eve", login, nil),           // a roles entry but not in the users file
            ("", login, nil),
            ("ALICE", login, nil),         // names are exact
            ("alice", nil, nil),           // no login block: nobody is vouched for
        ]
        for (subject, login, expected) in rows {
            XCTAssertEqual(Decide.sessionRoles(of: subject, login: login), expected, subject)
        }
    }

    /// The wait carries the route's requirement from the config the request was matched in, so
    /// a continuation cannot pair the route with another config's requirement by index.
    func testTheSessionWaitCarriesTheRequirementOfItsOwnConfig() {
        let sessions = SessionSettings(login: Self.login(users: ["bob"], roles: ["bob": ["reader"]]))
        let before = Self.config(routes: [(Self.route("public", "/public/**", index: 0, auth: .none), nil),
                                          (Self.route("admin", "/admin/**", index: 1), Requirement(rolesAny: ["admin"])),
                                          (Self.route("api", "/api/**", index: 2), nil)], sessions: sessions)
        var facts = Self.facts("/admin/x")
        facts.sessionCookie = String(repeating: "A", count: 43)
        let plan = Decide.plan(facts, config: before, auth: AuthContext(verifier: nil, cache: nil, now: Self.now))
        guard case .needsSession(let wait) = plan else { return XCTFail("\(plan)") }
        XCTAssertEqual(wait.route.name, "admin")
        XCTAssertEqual(wait.requirement?.rolesAny, ["admin"])
        // Whatever config is current when the store answers, the decision is the request's own.
        let after = Decide.plan(afterSession: .success(Self.record("bob")), wait: wait, facts: facts,
                                config: before, now: Self.now)
        XCTAssertEqual(Self.outcome(after), .refuse(status: 403, reason: .insufficientRole, route: "admin"))
    }

    // MARK: keys (SPEC §3.2 Keys)

    static let secretA = Array("key-a-0123456789abcdef0123456789abcdef".utf8)
    static let secretB = Array("key-b-0123456789abcdef0123456789abcdef".utf8)

    static func issuer(_ name: String, keys: [JWK]) -> JWTIssuerConfig {
        JWTIssuerConfig(name: name, issuer: "https://\(name).test", audiences: nil, algorithms: [.hs256], keys: JWKSet(keys: keys))
    }

    static func verifier(_ issuers: JWTIssuerConfig...) -> JWTVerifier { JWTVerifier(issuers: issuers, leeway: 0) }

    static func token(issuer: String, kid: String, secret: [UInt8], roles: [String] = ["reader"]) -> String {
        func b64(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let header = #"{"alg":"HS256","kid":"\#(kid)"}"#
        let roleList = roles.map { "\"\($0)\"" }.joined(separator: ",")
        let claims = #"{"iss":"https://\#(issuer).test","sub":"alice","exp":\#(now + 600),"roles":[\#(roleList)]}"#
        let input = b64(Data(header.utf8)) + "." + b64(Data(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: secret))
        return input + "." + b64(Data(mac))
    }

    func testAnUnknownKidOfAnIssuerWithAURLWaitsOnceForItsKeys() {
        let remote = Self.issuer("remote", keys: [JWK(hmacSecret: Self.secretA, kid: "a")])
        let fixed = Self.issuer("fixed", keys: [JWK(hmacSecret: Self.secretA, kid: "a")])
        let before = Self.verifier(remote, fixed)
        let after = before.replacingKeys(JWKSet(keys: [JWK(hmacSecret: Self.secretB, kid: "b")]), forIssuer: "remote")
        let config = Self.config(routes: [(Self.route("api", "/api/**", index: 0), nil),
                                          (Self.route("app", "/app/**", index: 1, loginRedirect: "/login"), nil)])
        let newKid = "Bearer " + Self.token(issuer: "remote", kid: "b", secret: Self.secretB)
        let neverKid = "Bearer " + Self.token(issuer: "remote", kid: "zz", secret: Self.secretB)
        let fixedKid = "Bearer " + Self.token(issuer: "fixed", kid: "b", secret: Self.secretB)
        let badSignature = "Bearer " + Self.token(issuer: "remote", kid: "a", secret: Self.secretB)
        let rows: [(String, String, String?, JWTVerifier, Bool, Outcome)] = [
            ("an unknown kid of a URL issuer waits", "/api/x", newKid, before, true,
             .needsKeys(route: "api", issuer: "remote")),
            ("on a login_redirect route too (the wait comes before the redirect)", "/app/x", newKid, before, true,
             .needsKeys(route: "app", issuer: "remote")),
            ("after the wait, the new key verifies it", "/api/x", newKid, after, false,
             .forward(route: "api", subject: "alice", roles: ["reader"])),
            ("after the wait, a kid still unknown is refused, never waits again", "/api/x", neverKid, after, false,
             .refuse(status: 401, reason: .unknownKid, route: "api")),
            ("after a wait that brought nothing (refresh failed or refused)", "/api/x", newKid, before, false,
             .refuse(status: 401, reason: .unknownKid, route: "api")),
            ("a browser after a fruitless wait is redirected", "/app/x", neverKid, after, false,
             .redirect(reason: .unknownKid)),
            ("an issuer without a URL has nothing to refresh: refused at once", "/api/x", fixedKid, before, true,
             .refuse(status: 401, reason: .unknownKid, route: "api")),
            ("a known kid with a bad signature does not wait", "/api/x", badSignature, before, true,
             .refuse(status: 401, reason: .badSignature, route: "api")),
            ("no route: 404 before any key work", "/nowhere", newKid, before, true,
             .refuse(status: 404, reason: .noRoute, route: nil)),
        ]
        for (name, path, authorization, verifier, mayWait, expected) in rows {
            for cache in [nil, VerifiedTokenCache()] {
                let auth = AuthContext(verifier: verifier, cache: cache, now: Self.now, mayWaitForKeys: mayWait,
                                       refreshableIssuers: ["remote"])
                let plan = Decide.plan(Self.facts(path, authorization: authorization, accept: "text/html"), config: config, auth: auth)
                XCTAssertEqual(Self.outcome(plan), expected, "\(name) (cache: \(cache != nil))")
            }
        }
    }

    /// A negative cache entry of the unknown kid still names the issuer (so the next request
    /// waits too), and a new verifier (new keys) is not answered from it.
    func testTheTokenCacheKeepsTheIssuerOfAnUnknownKid() {
        let remote = Self.issuer("remote", keys: [JWK(hmacSecret: Self.secretA, kid: "a")])
        let before = Self.verifier(remote)
        let token = Substring(Self.token(issuer: "remote", kid: "b", secret: Self.secretB))
        let cache = VerifiedTokenCache()
        for _ in 0..<2 {
            let (result, issuer) = cache.verifyNamingIssuer(token, with: before, now: Self.now)
            XCTAssertEqual(result.failureReason, .unknownKid)
            XCTAssertEqual(issuer, "remote")
        }
        let after = before.replacingKeys(JWKSet(keys: [JWK(hmacSecret: Self.secretB, kid: "b")]), forIssuer: "remote")
        let (result, issuer) = cache.verifyNamingIssuer(token, with: after, now: Self.now)
        XCTAssertNil(result.failureReason)
        XCTAssertEqual(issuer, "remote")
    }

    func testTheVerifierAfterAKeyWait() {
        let config = Self.config(routes: [])
        let oldKeys = Self.verifier(Self.issuer("remote", keys: [JWK(hmacSecret: Self.secretA, kid: "a")]))
        let fetched = oldKeys.replacingKeys(JWKSet(keys: [JWK(hmacSecret: Self.secretB, kid: "b")]), forIssuer: "remote")
        let parked = Snapshot(config: config, targets: [:], generation: 4, verifier: oldKeys)
        let sameConfigNewKeys = parked.with(verifier: fetched)
        XCTAssertTrue(KeyWait.verifier(parked: parked, current: sameConfigNewKeys, issuer: "remote") === fetched,
                      "no reload: the loop's own verifier, keys known now")

        // A reload landed during the wait: the request's own issuers, with the fetched keys.
        let reloadedIssuer = JWTIssuerConfig(name: "remote", issuer: "https://other.test", audiences: ["x"],
                                             algorithms: [.hs256], keys: JWKSet(keys: [JWK(hmacSecret: Self.secretB, kid: "b")]))
        let reloaded = Snapshot(config: config, targets: [:], generation: 5, verifier: Self.verifier(reloadedIssuer))
        let mixed = KeyWait.verifier(parked: parked, current: reloaded, issuer: "remote")
        XCTAssertEqual(mixed?.issuers.map(\.issuer), ["https://remote.test"], "the request's own issuer settings")
        XCTAssertEqual(mixed?.issuers.first?.keys.keys.map(\.kid), ["b"], "the keys known now")

        let gone = Snapshot(config: config, targets: [:], generation: 6, verifier: nil)
        XCTAssertTrue(KeyWait.verifier(parked: parked, current: gone, issuer: "remote") === oldKeys,
                      "the issuer gone from the new config: the request's own keys")
        XCTAssertNil(KeyWait.verifier(parked: gone, current: parked, issuer: "remote"))
    }

    func testWaitersAreSharedOutOverTheLoops() {
        XCTAssertEqual(KeyWait.waitersPerLoop(workers: 1), 1024)
        XCTAssertEqual(KeyWait.waitersPerLoop(workers: 2), 512)
        XCTAssertEqual(KeyWait.waitersPerLoop(workers: 3), 341)
        XCTAssertEqual(KeyWait.waitersPerLoop(workers: 0), 1024)
        XCTAssertEqual(KeyWait.waitersPerLoop(workers: 5000), 1)
    }
}

private extension Result where Failure == Reason {
    var failureReason: Reason? {
        if case .failure(let reason) = self { return reason }
        return nil
    }
}
