import GatehouseAuth
import GatehouseCore
import GatehouseConfig
import GatehouseDecision
import GatehousePolicy
import GatehouseSessions

/// What the gateway did with a test case's request, as `gatehouse test` compares it.
public struct PolicyTestObservation: Sendable {
    /// 200 for a forwarded request (the upstream's own status is not known here), 302 for a
    /// login redirect, 204 for an answered preflight, the refusal's status otherwise; nil for
    /// the gateway's login, keepalive and logout endpoints (answered after I/O).
    public var status: Int?
    public var route: String?
    public var reason: Reason?
    public var decision: String
    /// The headers the upstream would receive; nil when nothing is forwarded.
    public var upstreamHeaders: [(String, String)]?
}

/// The outcome of one case.
public struct PolicyTestResult: Sendable {
    public var testCase: PolicyTestCase
    public var observed: PolicyTestObservation
    /// One `expected …, got …` per expectation that did not hold; empty when the case passed.
    public var mismatches: [String]
    public var passed: Bool { mismatches.isEmpty }
}

/// `gatehouse test` (SPEC §15.1): each case's request goes through the pipeline `run` uses
/// (``Pipeline/decide(method:rawTarget:host:headers:config:auth:)``), its waits answered in
/// process — the session from the case, the keys from the minted token's key.
public enum PolicyTester {
    public static func run(_ testCase: PolicyTestCase, config: GatewayConfig,
                           now: Int64 = Clock.wallMs() / 1000) -> PolicyTestResult {
        let observed = observe(testCase, config: config, now: now)
        return PolicyTestResult(testCase: testCase, observed: observed,
                                mismatches: compare(testCase.expect, observed))
    }

    static func observe(_ testCase: PolicyTestCase, config: GatewayConfig, now: Int64) -> PolicyTestObservation {
        var headers = testCase.headers
        var verifier = config.jwt?.verifier
        if let token = testCase.token {
            if token.standsIn, case .key(let key) = token.signer {
                verifier = verifier?.replacingKeys(JWKSet(keys: [key.publicJWK]), forIssuer: token.issuer)
            }
            // Minting cannot fail for a case that loaded: the reader chose an algorithm the key signs.
            headers.append(("Authorization", "Bearer " + (token.mint(now: now) ?? "")))
        }
        if testCase.sessionUser != nil, let cookie = config.sessions?.cookie {
            headers.append(("Cookie", "\(cookie.name)=\(SessionID.generate().value)"))
        }
        let auth = AuthContext(verifier: verifier, cache: nil, now: now)
        switch Pipeline.decide(method: testCase.method, rawTarget: testCase.target, host: .fromRequest,
                               headers: HeaderPairs(headers), config: config, auth: auth,
                               client: client(of: testCase, headers: headers, config: config)) {
        case .refused(let refusal):
            return PolicyTestObservation(status: refusal.status, route: nil, reason: refusal.reason, decision: refusal.decision.rawValue)
        case .endpoint(let plan, _):
            if case .refuse(let refusal) = plan {
                return PolicyTestObservation(status: refusal.status, route: nil, reason: refusal.reason,
                                             decision: refusal.decision.rawValue)
            }
            if case .preflight = plan { return PolicyTestObservation(status: 204, decision: Decision.preflight.rawValue) }
            return PolicyTestObservation(status: nil, decision: "gateway endpoint")
        case let .plan(plan, facts):
            let settled = settle(plan, testCase: testCase, facts: facts, config: config, now: now)
            return observation(of: settled, testCase: testCase, headers: headers, facts: facts, config: config)
        }
    }

    /// The waits of a plan answered in process: the session store knows exactly the case's
    /// user (logged in now); keys never need a refresh (`mayWaitForKeys` is off); a case is one
    /// request, the first of its rate-limit bucket, so it is admitted (`burst` is at least 1).
    static func settle(_ plan: Plan, testCase: PolicyTestCase, facts: RequestFacts, config: GatewayConfig, now: Int64) -> Plan {
        switch plan {
        case .needsSession(let wait):
            var record: SessionRecord?
            if let user = testCase.sessionUser, let sessions = config.sessions {
                record = SessionRecord(idHash: wait.idHash, subject: user, roles: sessions.login?.roles(of: user) ?? [],
                                       now: now, absoluteTimeout: sessions.absoluteTimeout)
            }
            let after = Decide.plan(afterSession: .success(record), wait: wait, facts: facts, config: config, now: now)
            return settle(after, testCase: testCase, facts: facts, config: config, now: now)
        case .needsRateLimit(let check):
            return Decide.plan(afterRateLimit: .allowed, check: check, facts: facts, config: config)
        default:
            return plan
        }
    }

    /// Who asks, as the edge tells the pipeline (rate-limit keys, SPEC §13): the client address
    /// of SPEC §7.1 from the case's peer, and from a trusted peer the `header:NAME` values.
    static func client(of testCase: PolicyTestCase, headers: [(String, String)], config: GatewayConfig) -> ClientFacts {
        let trusted = config.server.trustedProxies
        let pairs = HeaderPairs(headers)
        let address = trusted.isEmpty ? testCase.client
            : ForwardedFor.clientAddress(peer: testCase.client, incoming: pairs.joined("x-forwarded-for", separator: ", "),
                                         trusted: trusted)
        var facts = ClientFacts(address: address, peerTrusted: ProxyExchange.isTrusted(testCase.client, trusted))
        if facts.peerTrusted {
            for name in config.rateLimitHeaders {
                let values = headers.filter { UpstreamHeaders.sameName($0.0, name.lowercasedASCII) }.map(\.1)
                if !values.isEmpty { facts.headers.append((name, values.joined(separator: ", "))) }
            }
        }
        return facts
    }

    static func observation(of plan: Plan, testCase: PolicyTestCase, headers: [(String, String)], facts: RequestFacts,
                            config: GatewayConfig) -> PolicyTestObservation {
        switch plan {
        case .forward(let forward):
            let requestID = HeaderPairs(headers).first("X-Request-Id").flatMap { RequestID.isAcceptable($0) ? $0 : nil }
            let upstream = UpstreamHeaders.list(headers, forward: forward, config: config, peer: testCase.client,
                                                host: facts.host, requestID: requestID)
            // A shadow route forwards its refusals: the reason is the one logged (SPEC §15.2).
            let decision = forward.shadow.map { "\($0.decision.rawValue), shadow" } ?? Decision.allow.rawValue
            return PolicyTestObservation(status: 200, route: forward.route.name, reason: forward.shadow?.reason,
                                         decision: decision, upstreamHeaders: upstream)
        case .refuse(let refusal):
            return PolicyTestObservation(status: refusal.status, route: refusal.route?.name, reason: refusal.reason,
                                         decision: refusal.decision.rawValue)
        case .redirect(let redirect):
            return PolicyTestObservation(status: 302, route: redirect.route.name, reason: .loginRedirect,
                                         decision: Decision.deny.rawValue)
        case .preflight(let answer):
            return PolicyTestObservation(status: 204, route: answer.route?.name, reason: nil, decision: Decision.preflight.rawValue)
        case let .needsKeys(route, _):
            // Not reached: keys are never waited for here.
            return PolicyTestObservation(status: 401, route: route.name, reason: .unknownKid, decision: Decision.deny.rawValue)
        case .needsSession(let wait):
            return PolicyTestObservation(status: 401, route: wait.route.name, reason: .sessionUnknown, decision: Decision.deny.rawValue)
        case .needsIntrospection(let wait):
            // An opaque token: the provider is not asked in a policy test (as in `explain`), so
            // the token is not known here.
            return PolicyTestObservation(status: 401, route: wait.route.name, reason: .tokenInactive,
                                         decision: Decision.deny.rawValue)
        case .needsRateLimit(let check):
            // Not reached: settled as admitted.
            return observation(of: .forward(check.forward), testCase: testCase, headers: headers, facts: facts, config: config)
        }
    }
}

extension PolicyTestObservation {
    init(status: Int?, decision: String) {
        self.init(status: status, route: nil, reason: nil, decision: decision, upstreamHeaders: nil)
    }
}
