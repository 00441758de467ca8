import XCTest
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
@testable import GatehouseDecision

/// An open tunnel judged again: after a reload, and on each look at its session (SPEC §12).
final class TunnelChecksTests: XCTestCase {
    typealias F = PipelineFixture

    static func facts(_ target: String, _ headers: [(String, String)]) -> RequestFacts {
        guard case .plan(_, let facts) = Pipeline.decide(method: "GET", rawTarget: target, host: .fromRequest,
                                                         headers: HeaderPairs(headers + WebSocketDecisionTests.handshake),
                                                         config: F.config, auth: AuthContext(verifier: nil, cache: nil, now: F.now))
        else { fatalError("not a route plan") }
        return facts
    }

    static func recheck(_ facts: RequestFacts, subject: String? = nil, now: Int64 = F.now, yaml: String? = nil) -> Reason? {
        let config = yaml.map(Self.load) ?? F.config
        return TunnelChecks.recheck(facts, sessionSubject: subject, config: config,
                                    auth: AuthContext(verifier: config.jwt?.verifier, cache: nil, now: now))
    }

    /// The fixture's config with `edit` applied to its YAML, loaded from a scratch folder.
    static func load(_ edit: String) -> GatewayConfig {
        let directory = NSTemporaryDirectory() + "gatehouse-tunnel-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, text) in ["gatehouse.yaml": edit, "hs256.key": F.secret, "users.htpasswd": F.users,
                             "remote.json": #"{"keys":[]}"#] {
            try! text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        }
        guard let config = ConfigLoader.load(path: "\(directory)/gatehouse.yaml", cpuCount: 1).config else { fatalError("config") }
        return config
    }

    func testAnUnchangedConfigKeepsTheTunnel() {
        XCTAssertNil(Self.recheck(Self.facts("/live/x", [F.bearer(F.token())])))
        let cookie = Self.facts("/live/x", [F.sessionCookie, ("Origin", F.publicOrigin)])
        XCTAssertNil(Self.recheck(cookie, subject: "alice"))
    }

    func testARequirementThatNowFailsClosesIt() {
        let yaml = F.yaml.replacingOccurrences(of: "websocket: true, require: { roles_any: [reader] }",
                                               with: "websocket: true, require: { roles_any: [admin] }")
        XCTAssertEqual(Self.recheck(Self.facts("/live/x", [F.bearer(F.token())]), yaml: yaml), .insufficientRole)
        XCTAssertEqual(Self.recheck(Self.facts("/live/x", [F.sessionCookie, ("Origin", F.publicOrigin)]), subject: "bob",
                                    yaml: yaml), .insufficientRole)
    }

    func testARouteNoLongerTunnellingClosesIt() {
        let yaml = F.yaml.replacingOccurrences(of: "upstream: api, websocket: true, require", with: "upstream: api, require")
        XCTAssertEqual(Self.recheck(Self.facts("/live/x", [F.bearer(F.token())]), yaml: yaml), .tunnelClosed)
    }

    func testAUserGoneFromTheUsersFileClosesIt() {
        let facts = Self.facts("/live/x", [F.sessionCookie, ("Origin", F.publicOrigin)])
        XCTAssertEqual(Self.recheck(facts, subject: "mallory"), .sessionRevoked)
    }

    func testAnExpiredTokenClosesIt() {
        let facts = Self.facts("/live/x", [F.bearer(F.token(exp: F.now + 10))])
        XCTAssertEqual(Self.recheck(facts, now: F.now + 3600), .tokenExpired)
    }

    func testAWithdrawnKeyClosesItAndAnIssuerWithoutKeysYetKeepsIt() {
        XCTAssertEqual(Self.recheck(Self.facts("/live/x", [F.bearer(F.remoteToken(kid: "withdrawn"))])), .unknownKid)
        let noKeys = F.token(iss: "https://empty.test", header: #"{"alg":"ES256","kid":"e1"}"#)
        XCTAssertNil(Self.recheck(Self.facts("/live/x", [F.bearer(noKeys)])))
    }

    func testSessionVerdicts() {
        let config = F.config
        let idle = config.sessions!.idleTimeout
        let active = F.record("alice")
        XCTAssertEqual(TunnelChecks.session(.success(active), subject: "alice", config: config, now: F.now),
                       .keep(recheckAt: active.expiry(idleTimeout: idle)))
        XCTAssertEqual(TunnelChecks.session(.success(nil), subject: "alice", config: config, now: F.now), .end(.sessionExpired))
        XCTAssertEqual(TunnelChecks.session(.success(F.record("alice", revoked: true)), subject: "alice", config: config, now: F.now),
                       .end(.sessionExpired))
        XCTAssertEqual(TunnelChecks.session(.success(F.record("alice", lastSeen: F.now - idle)), subject: "alice", config: config,
                                            now: F.now), .end(.sessionExpired))
        XCTAssertEqual(TunnelChecks.session(.success(F.record("alice", absoluteExpiry: F.now)), subject: "alice", config: config,
                                            now: F.now), .end(.sessionExpired))
        XCTAssertEqual(TunnelChecks.session(.success(active), subject: "bob", config: config, now: F.now), .end(.sessionExpired),
                       "another user's record")
        XCTAssertEqual(TunnelChecks.session(.success(F.record("mallory")), subject: "mallory", config: config, now: F.now),
                       .end(.sessionExpired), "gone from the users file")
        XCTAssertEqual(TunnelChecks.session(.failure(.timeout()), subject: "alice", config: config, now: F.now), .unknown)
    }

    func testTouchInterval() {
        XCTAssertEqual(TunnelChecks.touchInterval(idleTimeout: 1800), 5)
        XCTAssertEqual(TunnelChecks.touchInterval(idleTimeout: 8), 2)
        XCTAssertEqual(TunnelChecks.touchInterval(idleTimeout: 2), 1)
    }
}
