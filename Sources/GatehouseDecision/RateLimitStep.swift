import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// Who is asking, as the rate-limit keys of SPEC §13 need it. The edge fills it only when the
/// config has rate limits (``GatewayConfig/hasRateLimits``).
public struct ClientFacts: Sendable {
    /// The client address of SPEC §7.1 (the peer, or what a trusted proxy says); "" unknown.
    public var address: String = ""
    /// The peer is a trusted proxy (`server.trusted_proxies`; forward auth's `allow_from`).
    public var peerTrusted = false
    /// The values of the `header:NAME` keys' headers (lowercased name, value) — read only from
    /// a trusted peer: a client's own are never believed.
    public var headers: [(String, String)] = []

    public init(address: String = "", peerTrusted: Bool = false, headers: [(String, String)] = []) {
        self.address = address
        self.peerTrusted = peerTrusted
        self.headers = headers
    }
}

extension RequestFacts {
    /// Fills ``client``: `address` (the client address of SPEC §7.1), whether the peer is a
    /// trusted proxy, and — for a trusted peer only — the values of the headers that
    /// `header:NAME` keys name (`header(name)` gives a header's values joined, or nil).
    public mutating func identifyClient(address: String, peerTrusted: Bool, config: borrowing GatewayConfig,
                                        header: (String) -> String?) {
        client.address = address
        client.peerTrusted = peerTrusted
        guard peerTrusted else { return }
        for name in config.rateLimitHeaders {
            if let value = header(name) { client.headers.append((name, value)) }
        }
    }
}

/// The bucket a request is counted in (SPEC §13): per route, then per caller.
public struct RateLimitKey: Sendable, Hashable {
    public enum Kind: UInt8, Sendable {
        /// An authenticated caller: `scope` is its issuer (`session` for a session), `value` its subject.
        case subject = 1
        /// A client address (IPv6 per /64): `value` is ``ClientKey``'s text.
        case client = 2
        /// A header set by a trusted proxy: `scope` is its name, `value` its value.
        case header = 3
    }

    public var route: String
    public var kind: Kind
    public var scope: String
    public var value: String

    public init(route: String, kind: Kind, scope: String = "", value: String) {
        self.route = route
        self.kind = kind
        self.scope = scope
        self.value = value
    }

    /// A readable form for `explain` and tests: `api subject local:alice`.
    public var description: String {
        switch kind {
        case .subject: return "\(route) subject \(scope):\(value)"
        case .client: return "\(route) client \(value.isEmpty ? "(the client address)" : value)"
        case .header: return "\(route) header \(scope)=\(value)"
        }
    }
}

/// A rate-limit question: the request's key and the route's limit, with the forward it
/// becomes when admitted.
public struct RateLimitCheck: Sendable {
    public var forward: Forward
    public var limit: RateLimit
    public var key: RateLimitKey
}

/// The rate-limit store's answer.
public enum RateLimitAnswer: Sendable, Equatable {
    case allowed
    /// Over the limit: admitted again `retryAfterMicros` from now.
    case limited(retryAfterMicros: Int64)
    /// The store did not answer (Redis down, a timeout): the request passes (SPEC §13).
    case storeFailed
}

extension Decide {
    /// The key of an allowed request on a route with `limit` (SPEC §13).
    static func rateLimitCheck(_ forward: consuming Forward, limit: RateLimit, _ facts: RequestFacts) -> RateLimitCheck {
        let key = rateLimitKey(limit.key, route: forward.route.name, identity: forward.identity, client: facts.client)
        return RateLimitCheck(forward: forward, limit: limit, key: key)
    }

    /// `subject`: issuer and subject, the client address when anonymous (or when the token has
    /// no `sub`); `client`: the client address, IPv6 per /64; `header:NAME`: its value from a
    /// trusted peer, else the client address.
    public static func rateLimitKey(_ key: RateLimit.Key, route: String, identity: Identity?,
                                    client: ClientFacts) -> RateLimitKey {
        switch key {
        case .subject:
            if let identity, let subject = identity.subject {
                let scope = identity.method == .session ? "session" : (identity.token?.issuerName ?? "jwt")
                return RateLimitKey(route: route, kind: .subject, scope: scope, value: subject)
            }
        case .client:
            break
        case .header(let name):
            if client.peerTrusted, let value = client.headers.first(where: { $0.0 == name })?.1 {
                return RateLimitKey(route: route, kind: .header, scope: name, value: value)
            }
        }
        return RateLimitKey(route: route, kind: .client, value: ClientKey.of(client.address))
    }

    /// The rest of an allowed request on a rate-limited route: forward, or 429
    /// `too_many_requests` with `Retry-After` (whole seconds, rounded up) and the route's CORS
    /// headers. A store that did not answer lets the request through.
    public static func plan(afterRateLimit answer: RateLimitAnswer, check: RateLimitCheck, facts: RequestFacts,
                            config: borrowing GatewayConfig) -> Plan {
        guard case .limited(let micros) = answer else { return .forward(check.forward) }
        let identity = check.forward.identity
        var refused = refusal(.tooManyRequests, .rateLimited, route: check.forward.route, tried: identity?.method ?? .none,
                              subject: identity?.subject, facts, config)
        refused.extraHeaders = [("Retry-After", String(GCRA.retryAfterSeconds(micros)))]
        refused.identity = identity  // a shadow route forwards the caller with their identity headers
        return shadowing(.refuse(refused), facts, config)
    }

    /// ``plan(afterRateLimit:check:facts:config:)`` under a ``DecisionConfig``.
    public static func plan(afterRateLimit answer: RateLimitAnswer, check: RateLimitCheck, facts: RequestFacts,
                            under: DecisionConfig) -> Plan {
        plan(afterRateLimit: answer, check: check, facts: facts, config: under.config)
    }
}
