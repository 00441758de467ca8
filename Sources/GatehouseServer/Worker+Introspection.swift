import GatehouseCore
import GatehouseAuth
import GatehousePolicy
import GatehouseDecision

/// Opaque Bearer tokens on a worker's loop (SPEC §14.3): a request whose token this loop's
/// cache does not know waits — without blocking the loop — for the main loop's
/// ``Introspector``; the first request of a token on this loop asks, later ones with the same
/// token join it. When the answer comes back every waiter is decided under its own snapshot
/// (``Decide/plan(afterIntrospection:wait:facts:config:now:)``) and the answer is kept in this
/// loop's cache.
///
/// The main loop answers every ask exactly once (a call has a 5 s deadline), so a wait ends.
/// Like a session-store wait, a client that closes meanwhile is noticed when its answer is sent.
///
/// Threading: all on this worker's loop (`introspected` arrives through its inbox).
extension Worker {
    func waitForIntrospection(_ pending: PendingRequest, wait: IntrospectionWait) {
        guard let settings = pending.snapshot.config.jwt?.introspection else {
            let plan = Decide.plan(afterIntrospection: .failure(.introspectionUnavailable), wait: wait, facts: pending.facts,
                                   under: pending.snapshot.decision, now: Clock.wallMs() / 1000)
            return carryOut(plan, pending)
        }
        let first = introspectionWaits[wait.key] == nil
        var stored = wait
        stored.token = ""   // the one ask carries it; the waiters need only the hash
        introspectionWaits[wait.key, default: []].append((pending, stored))
        inFlight += 1
        if first {
            shared.introspect(IntrospectionAsk(key: wait.key, token: wait.token, client: ClientKey.of(pending.log.client), worker: index,
                                               settings: settings))
        }
    }

    /// The main loop's answer for `key`.
    func introspected(_ key: IntrospectionKey, _ result: Result<IntrospectionCache.Entry, Reason>) {
        guard let waiters = introspectionWaits.removeValue(forKey: key) else { return }
        let now = Clock.wallMs() / 1000
        if case .success(let entry) = result { introspectionCache.keep(entry, for: key, now: now) }
        for (pending, wait) in waiters {
            inFlight -= 1
            let plan = Decide.plan(afterIntrospection: result, wait: wait, facts: pending.facts,
                                   under: pending.snapshot.decision, now: now)
            carryOut(plan, pending)
            flushClient(pending.connection)
        }
        exitIfDrained()
    }
}
