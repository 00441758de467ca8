import Glibc
import GatehouseAuth
import GatehouseConfig
import GatehousePolicy
import GatehouseTLS
import GatehouseDecision

/// An upstream target with its address resolved off the event loops (at load and reload),
/// so that no loop ever waits on DNS.
struct ResolvedTarget: Sendable, Hashable {
    var target: UpstreamTarget
    /// A numeric IP address.
    var address: String
    /// Pool key: `address:port` (`[v6]:port`), after `tls:` and the host name to verify for https.
    var key: String {
        let socket = address.contains(":") ? "[\(address)]:\(target.port)" : "\(address):\(target.port)"
        return target.tls ? "tls:\(target.host)@\(socket)" : socket
    }
}

/// Everything a request needs, immutable, swapped whole on reload. Loops hold a reference;
/// nothing in it changes after publication.
///
/// A request is decided and forwarded under the one snapshot it started with (SPEC §3): the
/// loop reads its current snapshot when a request arrives and hands that reference along in a
/// ``PendingRequest`` through every asynchronous wait; continuations never read the loop's
/// current snapshot again (the one exception, the keys after a key wait, is
/// ``KeyWait/verifier(parked:current:issuer:)``).
final class Snapshot: Sendable {
    let config: GatewayConfig
    /// `config` by reference, for the decision pipeline (no copy of the config per call).
    let decision: DecisionConfig
    let targets: [String: [ResolvedTarget]]
    let generation: Int
    /// The JWT verifier with the keys known now (JWKS refreshes replace it); nil without `jwt`.
    let verifier: JWTVerifier?
    /// Session store, throttle and password threads; nil without `sessions`.
    let sessions: SessionRuntime?
    /// The Redis session store's address, resolved at load.
    let redisAddress: String?
    /// The Redis rate-limit store's address (`rate_limits.store`), resolved at load.
    let rateLimitRedisAddress: String?
    /// The client headers never forwarded as sent, with the `identity_headers` names (SPEC §7.1).
    let requestHeaderFilter: RequestHeaderFilter
    /// `server.tls` loaded: new client connections speak TLS with it; nil for plain HTTP.
    let tls: ServerTLSContext?
    /// Issuers whose keys come from a `jwks_url`: an unknown `kid` of theirs may wait for a
    /// refresh (SPEC §3.2 Keys).
    let refreshableIssuers: Set<String>
    /// Each route's upstream, by the route's position (`Route.index`): a forward reads an array
    /// instead of hashing the upstream's name (``upstream(of:)``).
    private let upstreamOfRoute: [UpstreamSettings?]

    init(config: GatewayConfig, targets: [String: [ResolvedTarget]], generation: Int, verifier: JWTVerifier?,
         sessions: SessionRuntime? = nil, redisAddress: String? = nil, tls: ServerTLSContext? = nil,
         rateLimitRedisAddress: String? = nil) {
        self.redisAddress = redisAddress
        self.rateLimitRedisAddress = rateLimitRedisAddress
        self.config = config
        upstreamOfRoute = config.routes.routes.map { config.upstreams[$0.upstream] }
        self.decision = DecisionConfig(config)
        self.targets = targets
        self.generation = generation
        self.verifier = verifier
        self.sessions = sessions
        self.requestHeaderFilter = RequestHeaderFilter(identityHeaderNames: config.identityHeaders.allNames)
        self.tls = tls
        self.refreshableIssuers = Set(config.jwt?.remoteJWKS.map(\.issuer) ?? [])
    }

    /// The same snapshot with another verifier (after a JWKS refresh).
    func with(verifier: JWTVerifier?) -> Snapshot {
        Snapshot(config: config, targets: targets, generation: generation, verifier: verifier, sessions: sessions,
                 redisAddress: redisAddress, tls: tls, rateLimitRedisAddress: rateLimitRedisAddress)
    }

    /// The same snapshot with its session runtime.
    func with(sessions: SessionRuntime?) -> Snapshot {
        Snapshot(config: config, targets: targets, generation: generation, verifier: verifier, sessions: sessions,
                 redisAddress: redisAddress, tls: tls, rateLimitRedisAddress: rateLimitRedisAddress)
    }

    /// Resolves every upstream target (blocking: call off the event loops).
    /// Returns the problems found as messages.
    static func make(config: GatewayConfig, generation: Int) -> Result<Snapshot, SnapshotError> {
        var targets: [String: [ResolvedTarget]] = [:]
        var problems: [String] = []
        for (name, upstream) in config.upstreams {
            targets[name] = upstream.targets.compactMap { target in
                guard let address = resolve(target.host) else {
                    problems.append("upstreams.\(name): cannot resolve \(target.host)")
                    return nil
                }
                return ResolvedTarget(target: target, address: address)
            }
        }
        // The Redis session store's host, too: hiredis would resolve it with a blocking call
        // on the loop at every reconnect.
        var redisAddress: String? = nil
        if case let .redis(host, _, _, _)? = config.sessions?.store {
            redisAddress = resolve(host)
            if redisAddress == nil { problems.append("sessions.store: cannot resolve \(host)") }
        }
        var rateLimitRedisAddress: String? = nil
        if case let .redis(host, _, _, _) = config.rateLimits.store, config.hasRateLimits {
            rateLimitRedisAddress = resolve(host)
            if rateLimitRedisAddress == nil { problems.append("rate_limits.store: cannot resolve \(host)") }
        }
        // The TLS files again: they may have changed since the config was checked.
        var tls: ServerTLSContext? = nil
        if let files = config.server.tls {
            switch ServerTLSContext.load(files) {
            case .success(let context): tls = context
            case .failure(.cert(let problem)): problems.append("server.tls.cert: \(problem)")
            case .failure(.key(let problem)): problems.append("server.tls.key: \(problem)")
            }
        }
        if !problems.isEmpty { return .failure(SnapshotError(problems: problems)) }
        return .success(Snapshot(config: config, targets: targets, generation: generation, verifier: config.jwt?.verifier,
                                 redisAddress: redisAddress, tls: tls, rateLimitRedisAddress: rateLimitRedisAddress))
    }

    /// The first address of `host` as numeric text (a literal is returned as is).
    static func resolve(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
        else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct SnapshotError: Error {
    var problems: [String]
}

extension Snapshot {
    /// `config.upstreams[route.upstream]`, for a route of this snapshot's config.
    func upstream(of route: Route) -> UpstreamSettings? {
        let index = route.index
        if index >= 0, index < upstreamOfRoute.count, let found = upstreamOfRoute[index], found.name == route.upstream {
            return found
        }
        return config.upstreams[route.upstream]
    }
}
