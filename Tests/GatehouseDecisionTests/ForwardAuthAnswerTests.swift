import XCTest
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
@testable import GatehouseDecision

/// Forward auth's answers as a table (SPEC §11): a described request through the pipeline of
/// PipelineFixture's config, and the plan mapped to 200 / 401 / 403 / 503 by
/// ``ForwardAuthAnswer``, with no socket.
final class ForwardAuthAnswerTests: XCTestCase {
    typealias F = PipelineFixture

    struct Answer: Equatable, CustomStringConvertible {
        var kind: String
        var status: Int
        var error: GatewayError? = nil
        var reason: Reason? = nil
        var challenge: String? = nil
        var headers: [String: String] = [:]
        /// The headers in order (every identity header, even empty ones).
        var names: [String] = []
        var description: String { "\(kind) \(status) \(error?.rawValue ?? "-") \(reason?.rawValue ?? "-") \(challenge ?? "-") \(headers)" }
    }

    static func answer(_ answer: ForwardAuthAnswer) -> Answer {
        switch answer {
        case let .allow(_, _, headers, shadow):
            return Answer(kind: shadow == nil ? "allow" : "allow-shadow", status: 200, reason: shadow?.reason,
                          headers: Summary.headerMap(headers), names: headers.map(\.0))
        case let .preflight(_, headers):
            return Answer(kind: "preflight", status: 200, headers: Summary.headerMap(headers), names: headers.map(\.0))
        case .refuse(let r):
            let headers = r.cors + r.extraHeaders
            return Answer(kind: "refuse", status: r.status, error: r.error, reason: r.reason, challenge: r.challenge,
                          headers: Summary.headerMap(headers), names: headers.map(\.0))
        }
    }

    /// Describe → facts → plan (→ the store's answer) → answer, as Worker+ForwardAuth does.
    static func decide(_ target: String, _ headers: [(String, String)] = [], method: String = "GET",
                       session: Result<SessionRecord?, SessionStoreError>? = nil, rateLimit: RateLimitAnswer? = nil,
                       host: String = "api.example.com") -> Answer {
        let config = DecisionConfig(F.config)
        let described = DescribedRequest(method: method, target: target, host: host)
        let facts: RequestFacts
        switch ForwardAuthAnswer.facts(of: described, headers: HeaderPairs(headers), under: config) {
        case .success(let built): facts = built
        case .failure(let refusal): return answer(.refuse(refusal))
        }
        let auth = AuthContext(verifier: config.config.jwt?.verifier, cache: nil, now: F.now)
        var plan = Decide.plan(facts, under: config, auth: auth)
        if case .needsSession(let wait) = plan {
            guard let session else { return Answer(kind: "needsSession", status: 0) }
            plan = Decide.plan(afterSession: session, wait: wait, facts: facts, under: config, now: F.now)
        }
        if case .needsRateLimit(let check) = plan {
            guard let rateLimit else { return Answer(kind: "needsRateLimit", status: 0) }
            plan = Decide.plan(afterRateLimit: rateLimit, check: check, facts: facts, under: config)
        }
        guard let mapped = ForwardAuthAnswer(plan, identityHeaders: config.config.identityHeaders) else {
            return Answer(kind: "wait", status: 0)
        }
        return answer(mapped)
    }

    static let identityNames = ["X-Auth-Subject", "X-Auth-Roles", "X-Auth-Method", "X-Auth-Email"]

    func testAllowedAnswersCarryEveryIdentityHeader() {
        let admin = F.bearer(F.token(roles: ["admin"], extra: #","email":"alice@example.com""#))
        let allowed = Self.decide("/admin/x", [admin])
        XCTAssertEqual(allowed.kind, "allow")
        XCTAssertEqual(Array(allowed.names.prefix(4)), Self.identityNames)
        XCTAssertEqual(allowed.headers, ["x-auth-subject": "alice", "x-auth-roles": "admin", "x-auth-method": "jwt",
                                         "x-auth-email": "alice@example.com", "vary": "Origin"])
        // An allowed origin gets the route's CORS response headers, for a proxy that copies them.
        let cors = Self.decide("/api/x", [F.bearer(F.token()), ("Origin", F.appOrigin)])
        XCTAssertEqual(cors.headers["access-control-allow-origin"], F.appOrigin)
        XCTAssertEqual(Self.decide("/nocors/x", [F.bearer(F.token()), ("Origin", F.appOrigin)]).names, Self.identityNames)
        // A token without the claim: the header is there, empty.
        let reader = Self.decide("/api/x", [F.bearer(F.token())])
        XCTAssertEqual(Array(reader.names.prefix(4)), Self.identityNames)
        XCTAssertEqual(reader.headers["x-auth-email"], "")
        // Anonymous on a public route: every header, all empty.
        let anonymous = Self.decide("/public/x")
        XCTAssertEqual(anonymous.kind, "allow")
        XCTAssertEqual(Array(anonymous.names.prefix(4)), Self.identityNames)
        XCTAssertEqual(Set(Self.identityNames.map { anonymous.headers[$0.lowercased()] }), [""])
        // A session user.
        let session = Self.decide("/api/x", [F.sessionCookie], session: .success(F.record("bob")))
        XCTAssertEqual(session.headers, ["x-auth-subject": "bob", "x-auth-roles": "reader", "x-auth-method": "session",
                                         "x-auth-email": "", "vary": "Origin"])
        XCTAssertEqual(Self.decide("/api/x", [F.sessionCookie]).kind, "needsSession")
    }

    func testRefusalsBecome401Or403() {
        let rows: [(String, Answer, Answer)] = [
            ("no credentials: 401 with the challenge", Self.decide("/api/x"),
             Answer(kind: "refuse", status: 401, error: .unauthorized, reason: .missingCredentials, challenge: Challenge.plain)),
            ("a bad token: 401 invalid_token", Self.decide("/api/x", [F.bearer(F.token(exp: F.now - 3600))]),
             Answer(kind: "refuse", status: 401, error: .unauthorized, reason: .tokenExpired, challenge: Challenge.invalidToken)),
            ("a role missing: 403 forbidden, insufficient_scope", Self.decide("/admin/x", [F.bearer(F.token())]),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .insufficientRole,
                    challenge: Challenge.insufficientScope)),
            ("deny_status 401 stays 401", Self.decide("/admin401/x", [F.bearer(F.token())]),
             Answer(kind: "refuse", status: 401, error: .forbidden, reason: .insufficientRole,
                    challenge: Challenge.insufficientScope)),
            ("no route: 403 forbidden, reason kept", Self.decide("/nowhere"),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .noRoute)),
            ("a path the policy would change: 403", Self.decide("/api/../admin/x", [F.bearer(F.token(roles: ["admin"]))]),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .pathRejected)),
            ("encoded dots: 403", Self.decide("/api/%2e%2e/admin/x"),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .pathRejected)),
            ("a browser on a login_redirect route: 401, no redirect", Self.decide("/app/page", [("Accept", "text/html")]),
             Answer(kind: "refuse", status: 401, error: .unauthorized, reason: .missingCredentials, challenge: Challenge.plain)),
            ("a session the store does not know: 401", Self.decide("/api/x", [F.sessionCookie], session: .success(nil)),
             Answer(kind: "refuse", status: 401, error: .unauthorized, reason: .sessionUnknown, challenge: Challenge.plain)),
            ("the store down: 503 kept", Self.decide("/api/x", [F.sessionCookie], session: .failure(.timeout())),
             Answer(kind: "refuse", status: 503, error: .serviceUnavailable, reason: .sessionStoreDown)),
            ("a cross-site POST with the cookie: 403 forbidden, csrf reason",
             Self.decide("/api/x", [F.sessionCookie, ("Origin", F.evilOrigin), ("Sec-Fetch-Site", "cross-site")], method: "POST"),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .csrfRejected)),
            ("an upgrade with the cookie from another origin: 403 (SPEC §12)",
             Self.decide("/api/x", [F.sessionCookie, ("Origin", F.evilOrigin), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .csrfRejected)),
            ("an upgrade with the cookie and no Origin: 403",
             Self.decide("/api/x", [F.sessionCookie, ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")]),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .csrfRejected)),
            ("a refused preflight: 403, no CORS headers",
             Self.decide("/api/x", [("Origin", F.evilOrigin), ("Access-Control-Request-Method", "PUT")], method: "OPTIONS"),
             Answer(kind: "refuse", status: 403, error: .forbidden, reason: .corsRejected)),
        ]
        for (name, got, expected) in rows {
            var got = got
            got.headers = [:]
            got.names = []
            XCTAssertEqual(got, expected, name)
        }
    }

    func testAnUpgradeFromOurOwnOriginPasses() {
        let upgrade = Self.decide("/api/x", [F.sessionCookie, ("Origin", F.publicOrigin), ("Sec-WebSocket-Key", "x")],
                                  session: .success(F.record("alice")))
        XCTAssertEqual(upgrade.kind, "allow")
        XCTAssertEqual(upgrade.headers["x-auth-subject"], "alice")
    }

    func testAnAllowedPreflightIs200WithItsCORSHeaders() {
        let preflight = Self.decide("/api/x", [("Origin", F.appOrigin), ("Access-Control-Request-Method", "PUT")], method: "OPTIONS")
        XCTAssertEqual(preflight.kind, "preflight")
        XCTAssertEqual(preflight.status, 200)
        XCTAssertEqual(preflight.headers["access-control-allow-origin"], F.appOrigin)
        XCTAssertNotNil(preflight.headers["access-control-allow-methods"])
    }

    func testRefusalsKeepCORSAndRetryAfter() {
        let refusal = Self.decide("/nowhere", [("Origin", F.appOrigin)])
        XCTAssertEqual(refusal.headers["access-control-allow-origin"], F.appOrigin)
        // A rate-limit refusal (SPEC §13) keeps its Retry-After; other extra headers do not pass.
        let limited = Refusal(.tooManyRequests, .throttled, extraHeaders: [("Retry-After", "3"), ("X-Other", "1")])
        let mapped = ForwardAuthAnswer.mapped(limited)
        XCTAssertEqual(mapped.status, 403)
        XCTAssertEqual(mapped.error, .forbidden)
        XCTAssertEqual(mapped.reason, .throttled)
        XCTAssertNil(mapped.challenge)
        XCTAssertEqual(mapped.extraHeaders.map(\.0), ["Retry-After"])
        // Failures keep their status; no answer closes the proxy's connection.
        var timeout = Refusal(.gatewayTimeout, .upstreamTimeout, closeConnection: true)
        timeout = ForwardAuthAnswer.mapped(timeout)
        XCTAssertEqual(timeout.status, 504)
        XCTAssertFalse(timeout.closeConnection)
        XCTAssertEqual(ForwardAuthAnswer.mapped(Refusal(.badRequest, .malformedRequest, closeConnection: true)).status, 403)
        XCTAssertEqual(ForwardAuthAnswer.refusal(.forwardAuthIncomplete).status, 403)
        XCTAssertNil(ForwardAuthAnswer.refusal(.forwardAuthIncomplete).challenge)
    }

    /// SPEC §11, §13: a rate-limit refusal is a 403 with the `forbidden` body and its `Retry-After`.
    func testARateLimitRefusalIs403WithRetryAfter() {
        XCTAssertEqual(Self.decide("/limited-public/x").kind, "needsRateLimit")
        let limited = Self.decide("/limited-public/x", rateLimit: .limited(retryAfterMicros: 2_500_000))
        XCTAssertEqual(limited.status, 403)
        XCTAssertEqual(limited.error, .forbidden)
        XCTAssertEqual(limited.reason, .rateLimited)
        XCTAssertNil(limited.challenge)
        XCTAssertEqual(limited.headers["retry-after"], "3")
        XCTAssertEqual(Self.decide("/limited-public/x", rateLimit: .allowed).kind, "allow")
        XCTAssertEqual(Self.decide("/limited-public/x", rateLimit: .storeFailed).kind, "allow")
    }

    /// SPEC §15.2: a shadow route's refusal is answered 200 (every identity header) and logged
    /// as the refusal it would have been.
    func testAShadowRoutesRefusalIsAllowedAndNamed() {
        let shadow = Self.decide("/shadow/x", [F.bearer(F.token())])
        XCTAssertEqual(shadow.kind, "allow-shadow")
        XCTAssertEqual(shadow.status, 200)
        XCTAssertEqual(shadow.reason, .insufficientRole)
        XCTAssertEqual(Array(shadow.names.prefix(4)), Self.identityNames)
        XCTAssertEqual(shadow.headers["x-auth-subject"], "alice")
        let anonymous = Self.decide("/shadow/x")
        XCTAssertEqual(anonymous.kind, "allow-shadow")
        XCTAssertEqual(anonymous.reason, .missingCredentials)
        XCTAssertEqual(anonymous.headers["x-auth-subject"], "")
        // Enforced routes refuse as ever.
        XCTAssertEqual(Self.decide("/enforced/x", [F.bearer(F.token())]).status, 403)
    }

    func testWaitsAreTheCarriersToDo() {
        let route = F.config.routes.routes[0]
        XCTAssertNil(ForwardAuthAnswer(.needsKeys(route, issuer: "remote"), identityHeaders: F.config.identityHeaders))
        XCTAssertNil(ForwardAuthAnswer(.needsSession(SessionWait(route: route, requirement: nil, idHash: "x")),
                                       identityHeaders: F.config.identityHeaders))
    }
}
