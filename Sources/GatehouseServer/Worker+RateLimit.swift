import CLibevent
import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseSessions
import GatehouseDecision

/// Rate limits on a worker's loop (SPEC §3 step 9, §13): the pipeline's
/// ``Plan/needsRateLimit(_:)`` asked of the store of the request's own snapshot — the memory
/// table at once, Redis without blocking the loop — then the forward or the 429.
extension Worker {
    /// The plan after the store answered, carried out under `own` (the hot path's parts one by
    /// one; a Redis wait makes a ``PendingRequest``).
    func carryRateLimit(_ check: RateLimitCheck, req: Request, own: Snapshot, facts: RequestFacts,
                        log: consuming AccessLogRecord, startNs: UInt64, connection: ClientConnection) {
        if case .redis = own.config.rateLimits.store {
            return waitForRateLimit(check, PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                                          connection: connection))
        }
        let answer = memoryAdmit(check, own: own)
        // Admitted (the common case): straight to the forward, no second plan.
        if answer == .allowed {
            return startForward(check.forward, req: req, own: own, facts: facts, log: log, startNs: startNs,
                                connection: connection)
        }
        let plan = Decide.plan(afterRateLimit: answer, check: check, facts: facts, under: own.decision)
        if case .refuse = plan { shared.rateLimits.refused(route: check.forward.route.name) }
        carryOut(plan, req: req, own: own, facts: facts, log: log, startNs: startNs, connection: connection)
    }

    /// The same for a request that already waited (a session lookup, a key refresh), or whose
    /// front-end has its own carrier: the rate-limit step runs here, the carrier gets the result.
    func carryRateLimit(_ check: RateLimitCheck, _ pending: PendingRequest) {
        if case .redis = pending.snapshot.config.rateLimits.store { return waitForRateLimit(check, pending) }
        let answer = memoryAdmit(check, own: pending.snapshot)
        finishRateLimit(answer, check: check, pending)
    }

    /// The memory table's answer (one lock, no allocation).
    func memoryAdmit(_ check: RateLimitCheck, own: Snapshot) -> RateLimitAnswer {
        let table: RateLimitTable
        if let existing = rateLimitTable {
            table = existing
        } else {
            table = shared.rateLimits.table(maxKeys: own.config.rateLimits.maxKeys)
            rateLimitTable = table
        }
        return table.admit(hash: RateLimitTable.hash(check.key), now: Int64(Clock.monotonicNs() / 1000), limit: check.limit)
    }

    /// Asks this loop's Redis connection; the request waits without blocking the loop, then is
    /// decided under its own snapshot.
    private func waitForRateLimit(_ check: RateLimitCheck, _ pending: PendingRequest) {
        guard let limiter = redisRateLimiter(pending.snapshot) else {
            return finishRateLimit(.storeFailed, check: check, pending)
        }
        inFlight += 1
        limiter.admit(check.key, limit: check.limit) { [self] answer in
            inFlight -= 1
            finishRateLimit(answer, check: check, pending)
            flushClient(pending.connection)
            exitIfDrained()
        }
    }

    private func finishRateLimit(_ answer: RateLimitAnswer, check: RateLimitCheck, _ pending: PendingRequest) {
        if answer == .storeFailed, shared.rateLimits.storeFailed(nowMs: Int64(Clock.monotonicNs() / 1_000_000)) {
            Gateway.say("rate limits (worker \(index)): the store did not answer; requests pass unlimited "
                            + "(counted in gatehouse_rate_limit_store_errors_total; logged at most every 10 s)")
        }
        let plan = Decide.plan(afterRateLimit: answer, check: check, facts: pending.facts, under: pending.snapshot.decision)
        if case .refuse = plan { shared.rateLimits.refused(route: check.forward.route.name) }
        carryOut(plan, pending)
    }

    /// This loop's connection to the Redis store of `own` (made on first use, remade when the
    /// store's URL changes); nil when its address could not be resolved.
    private func redisRateLimiter(_ own: Snapshot) -> RedisRateLimiter? {
        let setting = own.config.rateLimits.store
        if let existing = rateLimiter, existing.setting == setting { return existing }
        guard case let .redis(host, _, _, _) = setting else { return nil }
        rateLimiter?.connection.close()
        let limiter = RedisRateLimiter(base: base, address: own.rateLimitRedisAddress ?? host, setting: setting)
        let worker = index
        limiter.log = { Gateway.say("rate limits (worker \(worker)): redis \($0)") }
        rateLimiter = limiter
        return limiter
    }

    /// Fills the facts rate-limit keys need (SPEC §13), only when some route has a limit: the
    /// client address (as the access log has it), whether the peer is a trusted proxy, and the
    /// `header:NAME` values a trusted peer sent.
    func identifyClient(_ facts: inout RequestFacts, req: Request, snapshot: Snapshot) {
        guard snapshot.config.hasRateLimits else { return }
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let peer = peerAddress(of: req)
        let trusted = snapshot.config.server.trustedProxies
        let address = trusted.isEmpty ? peer
            : ForwardedFor.clientAddress(peer: peer, incoming: headers.joined("x-forwarded-for"), trusted: trusted)
        facts.identifyClient(address: address, peerTrusted: ForwardedFor.isTrustedPeer(peer, trusted: trusted),
                             config: snapshot.config) { headers.joined($0, separator: ",") }
    }
}
