import XCTest
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
@testable import GatehouseDecision

/// Shadow mode (SPEC §2 `routes[].mode`, §15.2) as a table: a refusal on a shadow route becomes
/// a forward carrying the refusal it replaced; the identity headers go along only for a valid
/// credential; CSRF, the WebSocket Origin rule and refused preflights still refuse.
final class ShadowModeTests: XCTestCase {
    typealias F = PipelineFixture
    typealias Row = PipelineTableTests.Row

    static var rows: [Row] {
        let reader = F.bearer(F.token())
        let admin = F.bearer(F.token(roles: ["admin"]))
        let cookie = F.sessionCookie
        let partner = ("Origin", F.partnerOrigin)
        return [
            Row(name: "allowed on a shadow route: a plain forward", target: "/shadow/x", headers: [admin], kind: "forward",
                expectHeaders: ["x-auth-subject": "alice", "x-shadow": ""]),
            Row(name: "no credentials: forwarded anonymously, would have been 401", target: "/shadow/x", kind: "forward",
                expectHeaders: ["x-shadow": "deny missing_credentials 401 none", "x-auth-subject": ""]),
            Row(name: "an invalid token: forwarded without identity", target: "/shadow/x",
                headers: [F.bearer(F.token(exp: F.now - 3600))], kind: "forward",
                expectHeaders: ["x-shadow": "deny token_expired 401 jwt", "x-auth-subject": "", "x-auth-method": ""]),
            Row(name: "a valid token lacking the role: forwarded with its identity", target: "/shadow/x", headers: [reader, partner],
                kind: "forward", expectHeaders: ["x-shadow": "deny insufficient_role 403 jwt", "x-auth-subject": "alice",
                                                 "x-auth-method": "jwt", "access-control-allow-origin": F.partnerOrigin]),
            Row(name: "the same on an enforcing route", target: "/enforced/x", headers: [reader], kind: "refuse", status: 403,
                reason: .insufficientRole),
            Row(name: "a session lacking the role: forwarded with its identity", target: "/shadow/x", headers: [cookie],
                session: .success(F.record("bob")), kind: "forward",
                expectHeaders: ["x-shadow": "deny insufficient_role 403 session", "x-auth-subject": "bob"]),
            Row(name: "an unknown session: forwarded anonymously", target: "/shadow/x", headers: [cookie],
                session: .success(nil), kind: "forward", expectHeaders: ["x-shadow": "deny session_unknown 401 session",
                                                                        "x-auth-subject": ""]),
            Row(name: "the store down: forwarded, would have been 503", target: "/shadow/x", headers: [cookie],
                session: .failure(.timeout()), kind: "forward", expectHeaders: ["x-shadow": "error session_store_down 503 session"]),
            Row(name: "a browser would have been sent to log in", target: "/shadow-app/x", headers: [("Accept", "text/html")],
                kind: "forward", expectHeaders: ["x-shadow": "deny login_redirect 302 none"]),
            Row(name: "over a shadow route's rate limit: forwarded with the caller's identity", target: "/shadow-limited/x",
                headers: [reader], limiter: .limited(retryAfterMicros: 1), kind: "forward",
                expectHeaders: ["x-shadow": "deny rate_limited 429 jwt", "x-auth-subject": "alice", "retry-after": ""]),
            // never shadowed
            Row(name: "CSRF still refuses", method: "POST", target: "/shadow/x",
                headers: [cookie, ("Sec-Fetch-Site", "cross-site"), ("Origin", F.evilOrigin)], kind: "refuse", status: 403,
                reason: .csrfRejected),
            Row(name: "the WebSocket Origin rule still refuses", target: "/shadow/ws",
                headers: [cookie, ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", F.evilOrigin)],
                kind: "refuse", status: 403, reason: .csrfRejected),
            Row(name: "a refused preflight is answered, not forwarded", method: "OPTIONS", target: "/shadow/x",
                headers: [("Origin", F.evilOrigin), ("Access-Control-Request-Method", "PUT")], kind: "refuse", status: 403,
                reason: .corsRejected),
            Row(name: "the path policy still refuses", target: "/shadow/a%2Fb", kind: "refuse", status: 400, reason: .pathRejected),
        ]
    }

    func testShadowRoutesForwardWhatTheyWouldRefuse() {
        for row in Self.rows {
            let got = PipelineTableTests.decide(row)
            XCTAssertEqual(got.kind, row.kind, "\(row.name): \(got)")
            XCTAssertEqual(got.status, row.status, "\(row.name): \(got)")
            XCTAssertEqual(got.reason, row.reason, "\(row.name): \(got)")
            for (name, value) in row.expectHeaders {
                XCTAssertEqual(got.headers[name] ?? "", value, "\(row.name): header \(name) in \(got)")
            }
        }
    }

    func testEveryShadowedRouteRefusalIsShadowableAndTheOthersAreNot() {
        for reason in Reason.allCases {
            let never: Set<Reason> = [.csrfRejected, .corsRejected, .pathRejected, .noRoute, .malformedRequest]
            XCTAssertEqual(Decide.isShadowable(reason), !never.contains(reason), reason.rawValue)
        }
    }
}
