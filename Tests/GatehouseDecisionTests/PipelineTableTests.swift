import XCTest
import GatehouseConfig
import GatehouseCore
import GatehouseSessions
@testable import GatehouseDecision

/// The decision pipeline as tables: (method, target, headers[, the session store's answer]) →
/// what a front-end answers (status, error, reason, challenge, key headers), with no socket.
/// Every ``Reason`` the pipeline can produce is reached by a row (``testEveryPipelineReasonIsReached``).
final class PipelineTableTests: XCTestCase {
    typealias F = PipelineFixture

    /// A row: the request, the store's answer for a cookie request (nil: not asked), whether an
    /// unknown kid may wait, and what is expected. `headers` lists headers that must be present
    /// with that value ("" means: must be absent).
    struct Row {
        var name: String
        var method = "GET"
        var target: String
        var headers: [(String, String)] = []
        var session: Result<SessionRecord?, SessionStoreError>? = nil
        var mayWait = false
        /// Who asks (rate-limit keys), and the rate-limit store's answer (nil: not asked).
        var client = ClientFacts(address: "192.0.2.7")
        var limiter: RateLimitAnswer? = nil
        var kind: String
        var status: Int? = nil
        var reason: Reason? = nil
        var challenge: String? = nil
        var expectHeaders: [String: String] = [:]
    }

    /// Drives the pipeline as a front-end does: path policy, facts (once), endpoint or route
    /// plan, the session continuation when the row gives the store's answer.
    static func decide(_ row: Row) -> Summary {
        let config = F.config
        let auth = AuthContext(verifier: config.jwt?.verifier, cache: nil, now: F.now, mayWaitForKeys: row.mayWait,
                               refreshableIssuers: Set(config.jwt?.remoteJWKS.map(\.issuer) ?? []))
        let outcome = Pipeline.decide(method: row.method, rawTarget: row.target, host: .fromRequest,
                                      headers: HeaderPairs(row.headers), config: config, auth: auth, client: row.client)
        guard case .plan(var plan, let facts) = outcome else {
            if case .refused(let refusal) = outcome { return Summary(refusal) }
            if case .endpoint(let endpoint, _) = outcome { return Summary(endpoint) }
            fatalError("unreachable")
        }
        if case .needsSession(let wait) = plan, let lookup = row.session {
            plan = Decide.plan(afterSession: lookup, wait: wait, facts: facts, config: config, now: F.now)
        }
        if case .needsRateLimit(let check) = plan, let answer = row.limiter {
            plan = Decide.plan(afterRateLimit: answer, check: check, facts: facts, config: config)
        }
        return Summary(plan)
    }

    static let plain = Challenge.plain
    static let invalid = Challenge.invalidToken
    static let scope = Challenge.insufficientScope
    static let appCORS = ["access-control-allow-origin": F.appOrigin, "access-control-allow-credentials": "true",
                          "vary": "Origin"]

    static var rows: [Row] {
        let app = ("Origin", F.appOrigin)
        let html = ("Accept", "text/html")
        let reader = F.bearer(F.token())
        let admin = F.bearer(F.token(roles: ["admin"], extra: #","email":"alice@example.com""#))
        return [
            // path policy, route, CORS before a route (SPEC §3 steps 3, 5, §6)
            Row(name: "public route: forwarded anonymously, no identity headers", target: "/public/x", kind: "forward",
                expectHeaders: ["x-auth-subject": "", "x-auth-method": ""]),
            Row(name: "a path the policy refuses: 400 with the global CORS", target: "/api/a%2Fb", headers: [app],
                kind: "refuse", status: 400, reason: .pathRejected, expectHeaders: appCORS),
            Row(name: "no route: 404 with the global CORS", target: "/nowhere", headers: [app], kind: "refuse", status: 404,
                reason: .noRoute, expectHeaders: appCORS),
            // Bearer tokens (SPEC §5.1), each failure with its challenge
            Row(name: "no credentials: 401, plain challenge", target: "/api/x", kind: "refuse", status: 401,
                reason: .missingCredentials, challenge: plain),
            Row(name: "another scheme is no credential", target: "/api/x", headers: [("Authorization", "Basic YTpi")],
                kind: "refuse", status: 401, reason: .missingCredentials, challenge: plain),
            Row(name: "not a JWS", target: "/api/x", headers: [F.bearer("abc")], kind: "refuse", status: 401,
                reason: .malformedToken, challenge: invalid),
            Row(name: "over 8 KiB", target: "/api/x", headers: [F.bearer(String(repeating: "a", count: 9000))],
                kind: "refuse", status: 401, reason: .tokenTooLarge, challenge: invalid),
            Row(name: "an issuer nobody configured", target: "/api/x", headers: [F.bearer(F.token(iss: "https://nobody.test"))],
                kind: "refuse", status: 401, reason: .unknownIssuer, challenge: invalid),
            Row(name: "alg outside the issuer's list", target: "/api/x",
                headers: [F.bearer(F.token(header: #"{"alg":"HS384"}"#))], kind: "refuse", status: 401,
                reason: .algNotAllowed, challenge: invalid),
            Row(name: "crit header", target: "/api/x", headers: [F.bearer(F.token(header: #"{"alg":"HS256","crit":["x"]}"#))],
                kind: "refuse", status: 401, reason: .unsupportedCrit, challenge: invalid),
            Row(name: "kid naming no key", target: "/api/x", headers: [F.bearer(F.token(header: #"{"alg":"HS256","kid":"zz"}"#))],
                kind: "refuse", status: 401, reason: .unknownKid, challenge: invalid),
            Row(name: "signed with another secret", target: "/api/x", headers: [F.bearer(F.token(secret: F.remoteSecret))],
                kind: "refuse", status: 401, reason: .badSignature, challenge: invalid),
            Row(name: "expired", target: "/api/x", headers: [F.bearer(F.token(exp: F.now - 3600))], kind: "refuse", status: 401,
                reason: .tokenExpired, challenge: invalid),
            Row(name: "not yet valid", target: "/api/x", headers: [F.bearer(F.token(extra: #","nbf":\#(F.now + 3600)"#))],
                kind: "refuse", status: 401, reason: .tokenNotYetValid, challenge: invalid),
            Row(name: "another audience", target: "/api/x", headers: [F.bearer(F.token(aud: "other-api"))], kind: "refuse",
                status: 401, reason: .wrongAudience, challenge: invalid),
            Row(name: "an issuer the route does not take", target: "/other/x", headers: [reader], kind: "refuse", status: 401,
                reason: .issuerNotAllowed, challenge: invalid),
            Row(name: "an issuer without any key yet", target: "/api/x",
                headers: [F.bearer(F.token(iss: "https://empty.test", header: #"{"alg":"ES256"}"#))], kind: "refuse",
                status: 401, reason: .noKeys, challenge: invalid),
            Row(name: "an unknown kid of a jwks_url issuer waits for its keys", target: "/api/x",
                headers: [F.bearer(F.remoteToken(kid: "new"))],
                mayWait: true, kind: "needsKeys", expectHeaders: ["x-issuer": "remote"]),
            Row(name: "… and never twice", target: "/api/x",
                headers: [F.bearer(F.remoteToken(kid: "new"))],
                kind: "refuse", status: 401, reason: .unknownKid, challenge: invalid),
            Row(name: "a token of the jwks_url issuer's known key", target: "/api/x",
                headers: [F.bearer(F.remoteToken(kid: "r1"))], kind: "forward",
                expectHeaders: ["x-auth-subject": "alice", "x-auth-method": "jwt"]),
            // authorization (SPEC §3 step 8)
            Row(name: "a role missing: 403 insufficient_scope challenge", target: "/admin/x", headers: [reader], kind: "refuse",
                status: 403, reason: .insufficientRole, challenge: scope),
            Row(name: "deny_status 401 keeps the insufficient_scope challenge", target: "/admin401/x", headers: [reader],
                kind: "refuse", status: 401, reason: .insufficientRole, challenge: scope),
            Row(name: "a scope missing", target: "/scoped/x", headers: [reader], kind: "refuse", status: 403,
                reason: .insufficientScope, challenge: scope),
            Row(name: "a claim mismatch", target: "/claimed/x", headers: [reader], kind: "refuse", status: 403,
                reason: .claimMismatch, challenge: scope),
            Row(name: "allowed: identity headers and the route's CORS", target: "/admin/x", headers: [admin, app],
                kind: "forward", expectHeaders: ["x-auth-subject": "alice", "x-auth-roles": "admin", "x-auth-method": "jwt",
                                                 "x-auth-email": "alice@example.com", "access-control-allow-origin": F.appOrigin]),
            Row(name: "optional route without credentials", target: "/opt/x", kind: "forward",
                expectHeaders: ["x-auth-subject": ""]),
            // login redirect (SPEC §3.1)
            Row(name: "a browser without credentials is sent to log in", target: "/app/page?a=1", headers: [html],
                kind: "redirect", status: 302, reason: .loginRedirect,
                expectHeaders: ["location": "/auth/login.html?return_to=%2Fapp%2Fpage%3Fa%3D1",
                                "x-credentials": "missing_credentials"]),
            Row(name: "an API client on the same route gets the 401", target: "/app/page",
                headers: [("Accept", "application/json")], kind: "refuse", status: 401, reason: .missingCredentials,
                challenge: plain),
            // CORS (SPEC §6)
            Row(name: "an allowed preflight", method: "OPTIONS", target: "/api/x",
                headers: [app, ("Access-Control-Request-Method", "PUT")], kind: "preflight", status: 204,
                expectHeaders: ["access-control-allow-origin": F.appOrigin]),
            Row(name: "a refused preflight has no CORS headers", method: "OPTIONS", target: "/api/x",
                headers: [("Origin", F.evilOrigin), ("Access-Control-Request-Method", "PUT")], kind: "refuse", status: 403,
                reason: .corsRejected, expectHeaders: ["access-control-allow-origin": "", "vary": ""]),
            Row(name: "a preflight for no route", method: "OPTIONS", target: "/nowhere",
                headers: [app, ("Access-Control-Request-Method", "GET")], kind: "refuse", status: 404, reason: .noRoute),
            Row(name: "a route's own CORS block replaces the global one", target: "/partner/x",
                headers: [("Origin", F.partnerOrigin)], kind: "refuse", status: 401, reason: .missingCredentials,
                challenge: plain, expectHeaders: ["access-control-allow-origin": F.partnerOrigin]),
            Row(name: "… and the global origin is not allowed there", target: "/partner/x", headers: [app], kind: "refuse",
                status: 401, reason: .missingCredentials, expectHeaders: ["access-control-allow-origin": "", "vary": "Origin"]),
            Row(name: "cors: false: no CORS header at all", target: "/nocors/x", headers: [app], kind: "refuse", status: 401,
                reason: .missingCredentials, expectHeaders: ["access-control-allow-origin": "", "vary": ""]),
        ] + sessionRows
    }

    /// Session cookies: CSRF, the WebSocket Origin rule, the store's answers (SPEC §5.3, §7.2, §12).
    static var sessionRows: [Row] {
        let cookie = F.sessionCookie
        let ws = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        return [
            Row(name: "a cookie request waits for the store", target: "/api/x", headers: [cookie], kind: "needsSession"),
            Row(name: "an active session: forwarded with the session's identity", target: "/admin/x", headers: [cookie],
                session: .success(F.record("alice")), kind: "forward",
                expectHeaders: ["x-auth-subject": "alice", "x-auth-roles": "admin,reader", "x-auth-method": "session"]),
            Row(name: "a reader's session on an admin route", target: "/admin/x", headers: [cookie],
                session: .success(F.record("bob")), kind: "refuse", status: 403, reason: .insufficientRole, challenge: scope),
            Row(name: "unknown to the store", target: "/api/x", headers: [cookie], session: .success(nil), kind: "refuse",
                status: 401, reason: .sessionUnknown, challenge: plain),
            Row(name: "expired", target: "/api/x", headers: [cookie], session: .success(F.record("alice", lastSeen: F.now - 7200)),
                kind: "refuse", status: 401, reason: .sessionExpired, challenge: plain),
            Row(name: "revoked", target: "/api/x", headers: [cookie], session: .success(F.record("alice", revoked: true)),
                kind: "refuse", status: 401, reason: .sessionRevoked, challenge: plain),
            Row(name: "a user gone from the users file", target: "/api/x", headers: [cookie],
                session: .success(F.record("mallory")), kind: "refuse", status: 401, reason: .sessionRevoked),
            Row(name: "the store down: 503", target: "/api/x", headers: [cookie], session: .failure(.timeout()), kind: "refuse",
                status: 503, reason: .sessionStoreDown, challenge: nil),
            Row(name: "an expired session in a browser: login redirect", target: "/app/x", headers: [cookie, ("Accept", "text/html")],
                session: .success(F.record("alice", lastSeen: F.now - 7200)), kind: "redirect", status: 302,
                reason: .loginRedirect, expectHeaders: ["x-credentials": "session_expired"]),
            Row(name: "a malformed cookie value is unknown at once", target: "/api/x", headers: [("Cookie", "\(F.cookieName)=x")],
                kind: "refuse", status: 401, reason: .sessionUnknown),
            Row(name: "CSRF: a cross-site POST with the cookie", method: "POST", target: "/api/x",
                headers: [cookie, ("Sec-Fetch-Site", "cross-site"), ("Origin", F.evilOrigin)], kind: "refuse", status: 403,
                reason: .csrfRejected, challenge: nil),
            Row(name: "§12: a cookie upgrade handshake from a foreign Origin, even GET", target: "/api/ws",
                headers: [cookie, ws, ("Origin", F.evilOrigin)], kind: "refuse", status: 403, reason: .csrfRejected),
            Row(name: "§12: … and without any Origin", target: "/api/ws", headers: [cookie, ws], kind: "refuse", status: 403,
                reason: .csrfRejected),
            Row(name: "§12: Sec-Fetch-Site does not stand in for the Origin", target: "/api/ws",
                headers: [cookie, ws, ("Sec-Fetch-Site", "same-origin")], kind: "refuse", status: 403, reason: .csrfRejected),
            Row(name: "§12: the public origin passes", target: "/api/ws", headers: [cookie, ws, ("Origin", F.publicOrigin)],
                kind: "needsSession"),
            Row(name: "§12: an origin the route's CORS allows passes", target: "/partner/ws",
                headers: [cookie, ws, ("Origin", F.partnerOrigin)], kind: "needsSession"),
            Row(name: "§12: … but not the global one on that route", target: "/partner/ws",
                headers: [cookie, ws, ("Origin", F.appOrigin)], kind: "refuse", status: 403, reason: .csrfRejected),
            Row(name: "§12: a Bearer handshake is not cookie-authenticated", target: "/api/ws",
                headers: [F.bearer(F.token()), cookie, ws, ("Origin", F.evilOrigin)], kind: "forward"),
            // the gateway's own endpoints (SPEC §3 step 4)
            Row(name: "login", method: "POST", target: "/auth/login", kind: "login"),
            Row(name: "login from a foreign site", method: "POST", target: "/auth/login",
                headers: [("Sec-Fetch-Site", "cross-site"), ("Origin", F.evilOrigin)], kind: "refuse", status: 403,
                reason: .csrfRejected),
            Row(name: "an endpoint answers POST only", target: "/logout", kind: "refuse", status: 404, reason: .noRoute),
            Row(name: "an endpoint's preflight: the global policy", method: "OPTIONS", target: "/keepalive",
                headers: [("Origin", F.appOrigin), ("Access-Control-Request-Method", "POST")], kind: "preflight", status: 204,
                expectHeaders: ["access-control-allow-origin": F.appOrigin]),
            Row(name: "keepalive without a cookie", method: "POST", target: "/keepalive", kind: "refuse", status: 401,
                reason: .missingCredentials, challenge: plain),
            Row(name: "keepalive with a malformed cookie", method: "POST", target: "/keepalive",
                headers: [("Cookie", "\(F.cookieName)=x")], kind: "refuse", status: 401, reason: .sessionUnknown),
            Row(name: "keepalive with a cookie", method: "POST", target: "/keepalive", headers: [cookie], kind: "keepalive"),
            Row(name: "logout without a session clears the cookie at once", method: "POST", target: "/logout",
                kind: "logout-now"),
            Row(name: "logout with a session revokes it", method: "POST", target: "/logout", headers: [cookie], kind: "logout"),
        ] + rateLimitRows
    }

    /// SPEC §3 step 9, §13: after authorization, before forwarding; keys per route.
    static var rateLimitRows: [Row] {
        let app = ("Origin", F.appOrigin)
        let limited = ["retry-after": "3"] .merging(appCORS) { a, _ in a }
        let proxy = ClientFacts(address: "198.51.100.9", peerTrusted: true, headers: [("x-api-key", "k1")])
        let untrusted = ClientFacts(address: "198.51.100.9", peerTrusted: false, headers: [("x-api-key", "k1")])
        return [
            Row(name: "an allowed request on a limited route asks the store, keyed by issuer and subject",
                target: "/limited/x", headers: [F.bearer(F.token())], kind: "needsRateLimit",
                expectHeaders: ["x-key": "limited subject local:alice"]),
            Row(name: "anonymous on key: subject is keyed by the client address", target: "/limited/x",
                kind: "needsRateLimit", expectHeaders: ["x-key": "limited client 192.0.2.7"]),
            Row(name: "IPv6 clients are keyed per /64", target: "/limited-public/x",
                client: ClientFacts(address: "2001:db8:1:2:aaaa::1"), kind: "needsRateLimit",
                expectHeaders: ["x-key": "limited-public client 2001:db8:1:2::/64"]),
            Row(name: "header key from a trusted proxy: its value", target: "/keyed/x", client: proxy,
                kind: "needsRateLimit", expectHeaders: ["x-key": "limited-keyed header x-api-key=k1"]),
            Row(name: "header key from an untrusted peer: the client address", target: "/keyed/x", client: untrusted,
                kind: "needsRateLimit", expectHeaders: ["x-key": "limited-keyed client 198.51.100.9"]),
            Row(name: "a trusted proxy without the header: the client address", target: "/keyed/x",
                client: ClientFacts(address: "198.51.100.9", peerTrusted: true), kind: "needsRateLimit",
                expectHeaders: ["x-key": "limited-keyed client 198.51.100.9"]),
            Row(name: "the store admits: forwarded with identity headers", target: "/limited/x",
                headers: [F.bearer(F.token())], limiter: .allowed, kind: "forward",
                expectHeaders: ["x-auth-subject": "alice"]),
            Row(name: "over the limit: 429 with Retry-After rounded up and CORS", target: "/limited/x",
                headers: [F.bearer(F.token()), app], limiter: .limited(retryAfterMicros: 2_000_001), kind: "refuse",
                status: 429, reason: .rateLimited, expectHeaders: limited),
            Row(name: "a fraction of a second still says 1", target: "/limited-public/x",
                limiter: .limited(retryAfterMicros: 1), kind: "refuse", status: 429, reason: .rateLimited,
                expectHeaders: ["retry-after": "1"]),
            Row(name: "the store did not answer: the request passes", target: "/limited-public/x",
                limiter: .storeFailed, kind: "forward"),
            Row(name: "a refused request never reaches the limit", target: "/limited/x",
                headers: [F.bearer("abc")], kind: "refuse", status: 401, reason: .malformedToken, challenge: invalid),
            Row(name: "a cookie request: the session first, then the limit, keyed by the session's subject",
                target: "/limited/x", headers: [("Cookie", "\(F.cookieName)=\(F.cookie)")],
                session: .success(F.record("alice")), kind: "needsRateLimit",
                expectHeaders: ["x-key": "limited subject session:alice"]),
            Row(name: "a preflight is never limited", method: "OPTIONS", target: "/limited/x",
                headers: [app, ("Access-Control-Request-Method", "GET")], kind: "preflight", status: 204),
        ]
    }

    func testTheTable() {
        for row in Self.rows {
            let got = Self.decide(row)
            XCTAssertEqual(got.kind, row.kind, "\(row.name): \(got)")
            XCTAssertEqual(got.status, row.status, "\(row.name): \(got)")
            XCTAssertEqual(got.reason, row.reason, "\(row.name): \(got)")
            if row.challenge != nil || got.status == 401 {
                XCTAssertEqual(got.challenge, row.challenge ?? got.challenge, "\(row.name): \(got)")
            } else {
                XCTAssertNil(got.challenge, "\(row.name): \(got)")
            }
            if got.status == 401 { XCTAssertNotNil(got.challenge, "\(row.name): a 401 always has a challenge") }
            for (name, value) in row.expectHeaders {
                XCTAssertEqual(got.headers[name] ?? "", value, "\(row.name): header \(name) in \(got)")
            }
        }
    }

    /// The keepalive's continuation after the store answered (SPEC §5.3).
    func testKeepaliveAfterTheLookup() {
        let settings = F.config.sessions!
        let rows: [(String, Result<SessionRecord?, SessionStoreError>, Reason?)] = [
            ("active", .success(F.record("alice")), nil),
            ("unknown", .success(nil), .sessionUnknown),
            ("expired", .success(F.record("alice", absoluteExpiry: F.now)), .sessionExpired),
            ("revoked", .success(F.record("alice", revoked: true)), .sessionRevoked),
            ("a user gone from the users file", .success(F.record("mallory")), .sessionRevoked),
            ("the store down", .failure(.timeout()), .sessionStoreDown),
        ]
        for (name, lookup, reason) in rows {
            switch Decide.keepalive(after: lookup, settings: settings, now: F.now, cors: []) {
            case .touch(let subject): XCTAssertNil(reason, name); XCTAssertEqual(subject, "alice", name)
            case .refuse(let refusal): XCTAssertEqual(refusal.reason, reason, name)
            }
        }
        XCTAssertNil(Decide.afterStoreWrite(.success(()), subject: "alice", cors: []))
        XCTAssertEqual(Decide.afterStoreWrite(.failure(.timeout()), subject: "alice", cors: [])?.status, 503)
        let cleared = Decide.logoutHeaders(cors: [("Vary", "Origin")], settings: settings)
        XCTAssertEqual(cleared.map(\.0), ["Vary", "Set-Cookie"])
        XCTAssertTrue(cleared[1].1.hasPrefix("\(F.cookieName)=;"), cleared[1].1)
    }

    /// Reasons the pipeline cannot produce, and where they are produced instead:
    /// - `malformed_request`, `headers_too_large`, `payload_too_large`: the evhttp edge (framing
    ///   and size limits: `Worker.precheck`, `Worker.handleEvhttpError`, CEvhttpHook);
    /// - `header_timeout`: the head timer (Worker+RequestHeadGuard);
    /// - `invalid_credentials`, `throttled`, `concurrent_logins`: the login's body, admission
    ///   and password check (Worker+Login, GatehouseSessions);
    /// - `upstream_timeout`, `upstream_connect_failed`, `upstream_error`, `upstream_down`,
    ///   `client_closed`: forwarding (ProxyExchange, UpstreamConnection, Worker+KeyWait);
    /// - `forward_auth_incomplete`, `forward_auth_peer`: forward auth's description of the
    ///   request and its peer check (ForwardAuthRequest, Worker+ForwardAuth; ForwardAuthRequestTests);
    /// - `tunnel_closed`, `tunnel_idle`: how an open WebSocket tunnel ended (Tunnel.swift);
    /// - `wrong_issuer`: in the log vocabulary but produced nowhere (the issuer is picked by
    ///   `iss`, so a mismatch is `unknown_issuer`).
    static let notFromThePipeline: Set<Reason> = [
        .malformedRequest, .headersTooLarge, .payloadTooLarge, .headerTimeout, .invalidCredentials, .throttled,
        .concurrentLogins, .upstreamTimeout, .upstreamConnectFailed, .upstreamError, .upstreamDown, .clientClosed,
        .wrongIssuer, .tunnelClosed, .tunnelIdle,
        // after an introspection call (SPEC §14.3): IntrospectionDecisionTests
        .tokenInactive, .introspectionUnavailable, .introspectionBusy,
        // the OIDC login's steps after its endpoint plan (SPEC §14.2): OIDCLoginTests
        .oidcStateInvalid, .oidcCodeRefused, .oidcIDTokenInvalid, .oidcProviderUnavailable,
        // forward auth's description and peer check (ForwardAuthRequest, Worker+ForwardAuth): ForwardAuthRequestTests
        .forwardAuthIncomplete, .forwardAuthPeer,
    ]

    func testEveryPipelineReasonIsReached() {
        var reached = Set(Self.rows.compactMap { Self.decide($0).reason })
        reached.insert(.sessionStoreDown)  // also by the keepalive table
        let expected = Set(Reason.allCases).subtracting(Self.notFromThePipeline)
        XCTAssertEqual(expected.subtracting(reached), [], "reasons no row reaches")
        XCTAssertEqual(reached.intersection(Self.notFromThePipeline), [], "listed as not from the pipeline, yet reached")
    }
}
