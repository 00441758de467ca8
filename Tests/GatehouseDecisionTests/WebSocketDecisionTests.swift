import XCTest
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
import GatehousePolicy
@testable import GatehouseDecision

/// WebSocket handshakes in the pipeline (SPEC §12): which requests are handshakes, which are
/// tunnelled, the body rule, and the Origin rule for cookie-authenticated ones.
final class WebSocketDecisionTests: XCTestCase {
    typealias F = PipelineFixture

    static let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    static let handshake = [("Upgrade", "websocket"), ("Connection", "Upgrade"), key, ("Sec-WebSocket-Version", "13")]

    /// (plan, facts) for a request, the session continuation run with `session` when given.
    static func decide(_ target: String, _ headers: [(String, String)], method: String = "GET",
                       session: SessionRecord? = nil) -> Plan {
        let config = F.config
        let auth = AuthContext(verifier: config.jwt?.verifier, cache: nil, now: F.now)
        guard case .plan(let plan, let facts) = Pipeline.decide(method: method, rawTarget: target, host: .fromRequest,
                                                                headers: HeaderPairs(headers), config: config, auth: auth)
        else { fatalError("not a route plan") }
        if case .needsSession(let wait) = plan, let session {
            return Decide.plan(afterSession: .success(session), wait: wait, facts: facts, config: config, now: F.now)
        }
        return plan
    }

    func tunnel(_ plan: Plan) -> Bool? {
        if case .forward(let forward) = plan { return forward.tunnel }
        return nil
    }

    func refusal(_ plan: Plan) -> (Int, Reason)? {
        if case .refuse(let refusal) = plan { return (refusal.status, refusal.reason) }
        return nil
    }

    func testHandshakeRecognition() {
        let rows: [(String, String?, String?, Bool)] = [
            ("GET", "websocket", "Upgrade", true),
            ("GET", "WebSocket", "keep-alive, Upgrade", true),
            ("GET", "h2c, websocket", "upgrade", true),
            ("GET", " websocket ", "close ,\tupgrade", true),
            ("POST", "websocket", "Upgrade", false),
            ("GET", "websocket", nil, false),
            ("GET", nil, "Upgrade", false),
            ("GET", "websockets", "Upgrade", false),
            ("GET", "websocket", "Upgraded", false),
            ("GET", "websocket", "keep-alive", false),
            ("GET", "", "", false),
            ("GET", "websocket\u{0}", "Upgrade", false),
            ("GET", String(repeating: ",", count: 10_000) + "websocket", "Upgrade", true),
        ]
        for (method, upgrade, connection, expected) in rows {
            XCTAssertEqual(WebSocketHandshake.isHandshake(method: method, upgrade: upgrade, connection: connection), expected,
                           "\(method) \(upgrade ?? "-") \(connection ?? "-")")
        }
    }

    func testBodyAnnouncement() {
        let rows: [(String?, String?, Bool)] = [
            (nil, nil, false), ("0", nil, false), ("000", nil, false), (" 0 ", nil, false),
            ("1", nil, true), ("10", nil, true), ("x", nil, true), ("", nil, true), ("-1", nil, true),
            (nil, "chunked", true), ("0", "chunked", true), (nil, "", true),
        ]
        for (length, coding, expected) in rows {
            XCTAssertEqual(WebSocketHandshake.announcesBody(contentLength: length, transferEncoding: coding), expected,
                           "\(length ?? "-") \(coding ?? "-")")
        }
    }

    func testUpgradeIsReadOnlyWhenSomeRouteTunnels() {
        let target = PathNormalizer.normalize(target: "/live/x", policy: .strict)!
        let with = RequestFacts(method: "GET", target: target, host: "gw", headers: HeaderPairs(Self.handshake), config: F.config)
        XCTAssertTrue(with.webSocketHandshake)
        let plain = TunnelChecksTests.load(F.yaml.replacingOccurrences(of: "websocket: true, ", with: ""))
        XCTAssertFalse(plain.routes.tunnels)
        let without = RequestFacts(method: "GET", target: target, host: "gw", headers: HeaderPairs(Self.handshake), config: plain)
        XCTAssertFalse(without.webSocketHandshake)
    }

    func testBearerHandshakeOnWebSocketRouteTunnels() {
        let plan = Self.decide("/live/feed", Self.handshake + [F.bearer(F.token())])
        XCTAssertEqual(tunnel(plan), true)
    }

    func testAnonymousHandshakeOnOpenWebSocketRouteTunnels() {
        XCTAssertEqual(tunnel(Self.decide("/live-open/x", Self.handshake)), true)
    }

    func testHandshakeIsAuthenticatedAndAuthorizedLikeAnyRequest() {
        XCTAssertEqual(refusal(Self.decide("/live/feed", Self.handshake))?.0, 401)
        XCTAssertEqual(refusal(Self.decide("/live/feed", Self.handshake + [F.bearer("abc")]))?.1, .malformedToken)
        let wrongRole = Self.decide("/live/feed", Self.handshake + [F.bearer(F.token(roles: ["guest"]))])
        XCTAssertEqual(refusal(wrongRole)?.0, 403)
        XCTAssertEqual(refusal(wrongRole)?.1, .insufficientRole)
        let expired = Self.decide("/live/feed", Self.handshake + [F.bearer(F.token(exp: F.now - 3600))])
        XCTAssertEqual(refusal(expired)?.1, .tokenExpired)
    }

    func testUpgradeOnOtherRouteIsAPlainRequest() {
        XCTAssertEqual(tunnel(Self.decide("/api/x", Self.handshake + [F.bearer(F.token())])), false)
        XCTAssertEqual(tunnel(Self.decide("/public/x", Self.handshake)), false)
    }

    func testNonHandshakeOnWebSocketRouteIsAPlainRequest() {
        let bearer = F.bearer(F.token())
        XCTAssertEqual(tunnel(Self.decide("/live/x", [bearer])), false)
        XCTAssertEqual(tunnel(Self.decide("/live/x", Self.handshake + [bearer], method: "POST")), false)
        XCTAssertEqual(tunnel(Self.decide("/live/x", [("Upgrade", "websocket"), bearer])), false, "no Connection: upgrade")
    }

    func testHandshakeWithBodyIs400() {
        for extra in [("Content-Length", "5"), ("Transfer-Encoding", "chunked")] {
            let plan = Self.decide("/live/x", Self.handshake + [F.bearer(F.token()), extra])
            XCTAssertEqual(refusal(plan)?.0, 400, "\(extra)")
            XCTAssertEqual(refusal(plan)?.1, .malformedRequest)
        }
        // Before authentication: no credentials needed to learn that the request is malformed.
        XCTAssertEqual(refusal(Self.decide("/live/x", Self.handshake + [("Content-Length", "1")]))?.0, 400)
        XCTAssertEqual(tunnel(Self.decide("/live/x", Self.handshake + [F.bearer(F.token()), ("Content-Length", "0")])), true)
        // Elsewhere an upgrade with a body is an ordinary request.
        XCTAssertEqual(tunnel(Self.decide("/live-open/x", [("Content-Length", "3")])), false)
    }

    func testCookieHandshakeNeedsATrustedOrigin() {
        let alice = F.record("alice")
        let cookie = F.sessionCookie
        let rows: [(String?, Bool)] = [
            (F.publicOrigin, true), (F.appOrigin, true), (nil, false), (F.evilOrigin, false), ("null", false), ("", false),
            (F.publicOrigin + ".evil.net", false),
        ]
        for (origin, allowed) in rows {
            var headers = Self.handshake + [cookie]
            if let origin { headers.append(("Origin", origin)) }
            let plan = Self.decide("/live/x", headers, session: alice)
            if allowed {
                XCTAssertEqual(tunnel(plan), true, origin ?? "no origin")
            } else {
                XCTAssertEqual(refusal(plan)?.0, 403, origin ?? "no origin")
                XCTAssertEqual(refusal(plan)?.1, .csrfRejected, origin ?? "no origin")
            }
        }
    }

    func testOriginRuleHoldsOnEveryRouteWithSecWebSocketKey() {
        let plan = Self.decide("/api/x", [Self.key, F.sessionCookie, ("Origin", F.evilOrigin)], session: F.record("alice"))
        XCTAssertEqual(refusal(plan)?.1, .csrfRejected)
    }

    func testBearerHandshakeIsExemptFromTheOriginRule() {
        let plan = Self.decide("/live/x", Self.handshake + [F.bearer(F.token()), F.sessionCookie, ("Origin", F.evilOrigin)])
        XCTAssertEqual(tunnel(plan), true)
    }

    func testCookieHandshakeWithWrongRoleIs403() {
        let carol = F.record("carol")  // no roles in the fixture
        let plan = Self.decide("/live/x", Self.handshake + [F.sessionCookie, ("Origin", F.publicOrigin)], session: carol)
        XCTAssertEqual(refusal(plan)?.0, 403)
    }
}
