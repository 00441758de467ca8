import Foundation
import XCTest
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
@testable import GatehouseDecision

/// Opaque Bearer tokens in the pipeline (SPEC §14.3): which tokens wait for introspection, and
/// the decision from the provider's answer under the request's own config.
final class IntrospectionDecisionTests: XCTestCase {
    static let now: Int64 = 1_900_000_000

    static func load(audiences: String = "[my-api]", extra: String = "") -> GatewayConfig {
        let directory = NSTemporaryDirectory() + "gatehouse-introspection-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = """
            jwt:
              issuers:
                - name: sso
                  issuer: "https://sso.example.com"
                  audiences: \(audiences)
                  algorithms: [RS256]
                  discovery: true
                  introspection: { client_id: gatehouse, client_secret_file: secret, cache: 60s }
                - { name: local, issuer: "https://local.test", algorithms: [HS256], secret_file: secret }
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: admin, match: { path: "/admin/**" }, upstream: api, require: { roles_any: [admin] } }
              - { name: local-only, match: { path: "/local/**" }, upstream: api, issuers: [local] }
              - { name: api, match: { path: "/api/**" }, upstream: api }
            \(extra)
            """
        try! yaml.write(toFile: "\(directory)/gatehouse.yaml", atomically: true, encoding: .utf8)
        try! "s3cret-0123456789abcdef0123456789abcdef\n".write(toFile: "\(directory)/secret", atomically: true, encoding: .utf8)
        let result = ConfigLoader.load(path: "\(directory)/gatehouse.yaml", cpuCount: 1)
        guard let config = result.config else { fatalError("fixture: \(result.problems)") }
        return config
    }

    static let config = load()

    func plan(_ token: String, path: String = "/api/x", cache: IntrospectionCache? = nil, config: GatewayConfig = config) -> (Plan, RequestFacts?) {
        let auth = AuthContext(verifier: config.jwt?.verifier, cache: nil, now: Self.now, introspectionCache: cache)
        let outcome = Pipeline.decide(method: "GET", rawTarget: path, host: .fromRequest,
                                      headers: HeaderPairs([("Authorization", "Bearer " + token)]), config: config, auth: auth)
        guard case .plan(let plan, let facts) = outcome else { XCTFail("not a route plan"); return (.refuse(Refusal(.notFound, .noRoute)), nil) }
        return (plan, facts)
    }

    static func answer(_ json: String) -> IntrospectionAnswer { try! IntrospectionAnswer(json: Array(json.utf8)) }

    func after(_ json: String?, path: String = "/api/x", config: GatewayConfig = config, failure: Reason? = nil) -> Plan {
        let (first, facts) = plan("opaque-token", path: path, config: config)
        guard case .needsIntrospection(let wait) = first, let facts else { XCTFail("expected a wait, got \(first)"); return first }
        let result: Result<IntrospectionCache.Entry, Reason> = failure.map { .failure($0) }
            ?? .success(IntrospectionCache.Entry(answer: Self.answer(json!), until: Self.now + 60))
        return Decide.plan(afterIntrospection: result, wait: wait, facts: facts, config: config, now: Self.now)
    }

    func testOpaqueTokensWaitJWSTokensDoNot() {
        guard case .needsIntrospection(let wait) = plan("2YotnFZFEjr1zCsicMWpAA").0 else { return XCTFail("opaque token must wait") }
        XCTAssertEqual(wait.token, "2YotnFZFEjr1zCsicMWpAA")
        XCTAssertEqual(wait.key, IntrospectionKey(token: "2YotnFZFEjr1zCsicMWpAA"))
        XCTAssertEqual(wait.route.name, "api")
        // a (bad) JWS goes the JWT way: refused without any call
        guard case .refuse(let refusal) = plan("a.b.c").0 else { return XCTFail("a JWS is not introspected") }
        XCTAssertEqual(refusal.tried, .jwt)
        for dotted in ["a.b", "a.b.c.d", "a.b.c.d.e"] {
            guard case .needsIntrospection = plan(dotted).0 else { return XCTFail("\(dotted) is not a compact JWS") }
        }
    }

    func testRouteIssuersAndSizeAreCheckedBeforeAnyCall() {
        guard case .refuse(let r) = plan("opaque", path: "/local/x").0 else { return XCTFail() }
        XCTAssertEqual(r.reason, .issuerNotAllowed)
        XCTAssertEqual(r.tried, .introspection)
        XCTAssertEqual(r.challenge, Challenge.invalidToken)
        guard case .refuse(let big) = plan(String(repeating: "x", count: 8193)).0 else { return XCTFail() }
        XCTAssertEqual(big.reason, .tokenTooLarge)
    }

    func testActiveAnswerForwardsWithIntrospectionIdentity() {
        let json = #"{"active":true,"sub":"alice","aud":["my-api","x"],"exp":\#(Self.now + 30),"scope":"read write","roles":["admin"],"email":"a@x"}"#
        guard case .forward(let f) = after(json, path: "/admin/x") else { return XCTFail() }
        XCTAssertEqual(f.identity?.method, .introspection)
        XCTAssertEqual(f.identity?.subject, "alice")
        XCTAssertEqual(f.identity?.roles, ["admin"])
        XCTAssertEqual(f.identity?.token?.scopes, ["read", "write"])
        XCTAssertTrue(f.identityHeaders.contains { $0.0 == "X-Auth-Method" && $0.1 == "introspection" }, "\(f.identityHeaders)")
    }

    /// SPEC §15.2: after introspection, a shadow route forwards what it would refuse — with the
    /// identity for a role refusal, anonymously for an inactive token or a provider that is down.
    func testShadowRoutesForwardIntrospectionRefusals() {
        let config = Self.load(extra: """
              - { name: shadow, match: { path: "/shadow/**" }, upstream: api, mode: shadow, require: { roles_any: [admin] } }
            """)
        let reader = #"{"active":true,"sub":"bob","aud":"my-api","exp":\#(Self.now + 30),"roles":["reader"]}"#
        guard case .forward(let f) = after(reader, path: "/shadow/x", config: config) else { return XCTFail() }
        XCTAssertEqual(f.shadow?.reason, .insufficientRole)
        XCTAssertEqual(f.identity?.subject, "bob")
        XCTAssertTrue(f.identityHeaders.contains { $0.0 == "X-Auth-Subject" && $0.1 == "bob" }, "\(f.identityHeaders)")
        guard case .forward(let inactive) = after(#"{"active":false}"#, path: "/shadow/x", config: config) else { return XCTFail() }
        XCTAssertEqual(inactive.shadow?.reason, .tokenInactive)
        XCTAssertNil(inactive.identity)
        XCTAssertTrue(inactive.identityHeaders.isEmpty)
        guard case .forward(let down) = after(nil, path: "/shadow/x", config: config, failure: .introspectionUnavailable) else {
            return XCTFail()
        }
        XCTAssertEqual(down.shadow?.status, 503)
        guard case .refuse = after(reader, path: "/admin/x", config: config) else { return XCTFail("admin enforces") }
    }

    func testRefusalsFromTheAnswer() {
        let cases: [(String, Reason)] = [
            (#"{"active":false}"#, .tokenInactive),
            (#"{"active":true,"sub":"a","aud":"my-api","exp":\#(Self.now - 31)}"#, .tokenExpired),
            (#"{"active":true,"sub":"a","aud":"my-api","nbf":\#(Self.now + 31)}"#, .tokenNotYetValid),
            (#"{"active":true,"sub":"a","aud":"other-api"}"#, .wrongAudience),
            (#"{"active":true,"sub":"a"}"#, .wrongAudience),
            (#"{"active":true,"sub":"a","aud":[]}"#, .wrongAudience),
            (#"{"active":true,"sub":"a","aud":"my-api","iss":"https://evil.example.com"}"#, .wrongIssuer),
        ]
        for (json, reason) in cases {
            guard case .refuse(let r) = after(json) else { XCTFail(json); continue }
            XCTAssertEqual(r.reason, reason, json)
            XCTAssertEqual(r.status, 401, json)
            XCTAssertEqual(r.tried, .introspection, json)
            XCTAssertEqual(r.challenge, Challenge.invalidToken, json)
        }
        guard case .refuse(let forbidden) = after(#"{"active":true,"sub":"bob","aud":"my-api","roles":["reader"]}"#, path: "/admin/x")
        else { return XCTFail() }
        XCTAssertEqual(forbidden.reason, .insufficientRole)
        XCTAssertEqual(forbidden.status, 403)
    }

    func testFailuresAre503ForThatTokenOnly() {
        for reason in [Reason.introspectionUnavailable, .introspectionBusy] {
            guard case .refuse(let r) = after(nil, failure: reason) else { XCTFail(); continue }
            XCTAssertEqual(r.status, 503)
            XCTAssertEqual(r.error, .serviceUnavailable)
            XCTAssertEqual(r.reason, reason)
            XCTAssertEqual(r.decision, .error)
        }
    }

    func testAudiencesOmittedMeansAudNotChecked() {
        let open = Self.load(audiences: "null")
        guard case .forward = after(#"{"active":true,"sub":"a"}"#, config: open) else { return XCTFail() }
    }

    func testTheAnswerIsJudgedUnderTheRequestsOwnConfig() {
        // the wait was made under a config whose audience the answer matches; a reload changed
        // the audiences meanwhile: the request is decided under its own config (the caller
        // passes the request's snapshot), so the result depends only on the config passed
        let reloaded = Self.load(audiences: "[new-api]")
        let (first, facts) = plan("opaque-token")
        guard case .needsIntrospection(let wait) = first, let facts else { return XCTFail() }
        let entry = IntrospectionCache.Entry(answer: Self.answer(#"{"active":true,"sub":"a","aud":"my-api"}"#), until: Self.now + 60)
        guard case .forward = Decide.plan(afterIntrospection: .success(entry), wait: wait, facts: facts, config: Self.config,
                                          now: Self.now) else { return XCTFail("own config") }
        guard case .refuse(let r) = Decide.plan(afterIntrospection: .success(entry), wait: wait, facts: facts, config: reloaded,
                                                now: Self.now) else { return XCTFail() }
        XCTAssertEqual(r.reason, .wrongAudience)
    }

    func testACachedAnswerIsUsedWithoutWaiting() {
        let cache = IntrospectionCache()
        cache.store(Self.answer(#"{"active":true,"sub":"carol","aud":"my-api"}"#), for: IntrospectionKey(token: "tok"), now: Self.now,
                    cacheSeconds: 60)
        guard case .forward(let f) = plan("tok", cache: cache).0 else { return XCTFail() }
        XCTAssertEqual(f.identity?.subject, "carol")
        guard case .needsIntrospection = plan("other", cache: cache).0 else { return XCTFail() }
    }
}
