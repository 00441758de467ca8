import CLibevent
import GatehouseCore
import GatehouseDecision

/// One request waiting for its issuer's keys on a loop.
final class KeyWaitEntry {
    var pending: PendingRequest
    let issuer: String
    let deadlineNs: UInt64
    init(pending: PendingRequest, issuer: String, deadlineNs: UInt64) {
        self.pending = pending
        self.issuer = issuer
        self.deadlineNs = deadlineNs
    }
}

/// The requests of one loop that wait for one issuer's keys, oldest first (every wait is
/// ``KeyWait/maxWaitMs`` long, so that is also deadline order), with the loop's one timer for
/// their deadlines.
final class KeyWaitQueue {
    let issuer: String
    /// unowned(unsafe): a worker outlives its queues (they live as long as the process).
    unowned(unsafe) let worker: Worker
    var entries: [KeyWaitEntry] = []
    /// This loop has asked the main loop for the issuer's keys and has not heard back yet.
    var asked = false
    /// Fires at the oldest entry's deadline; made on first use, kept with the queue.
    var timer: OpaquePointer?
    init(issuer: String, worker: Worker) {
        self.issuer = issuer
        self.worker = worker
    }
}

/// SPEC §3.2 Keys: a Bearer token whose `kid` its issuer's keys lack waits — without blocking
/// the loop — for the refresh it triggers or one already in flight, at most
/// ``KeyWait/maxWaitMs``, then is decided again on the keys known then (once: the second
/// decision never waits). The main loop's ``KeyManager`` runs at most one on-demand refresh per
/// issuer per 30 s and tells every loop (`keysSettled`) when it has ended, or at once when none
/// may run. At most ``KeyWait/maxWaitersPerIssuer`` requests wait per issuer in the process
/// (shared out over the loops); beyond that a request is decided at once.
///
/// The waiting request keeps its own snapshot (``PendingRequest``): it is decided with that
/// snapshot's routes and configuration, and the keys of ``KeyWait/verifier(parked:current:issuer:)``.
/// While it waits, the client's socket is read for close only (``keepReadingClient(_:)``): a
/// client that goes away ends the wait at once (`keyWaitClientGone`), nothing is kept.
///
/// Threading: all on this worker's loop.
extension Worker {
    /// Parks `pending` until `issuer`'s keys are refreshed (or the wait ends).
    func waitForKeys(_ pending: PendingRequest, issuer: String) {
        let queue = keyWaits[issuer] ?? {
            let made = KeyWaitQueue(issuer: issuer, worker: self)
            keyWaits[issuer] = made
            return made
        }()
        guard queue.entries.count < KeyWait.waitersPerLoop(workers: pending.snapshot.config.server.workers) else {
            return decideAfterKeyWait(pending, issuer: issuer)
        }
        let deadline = Clock.monotonicNs() + UInt64(KeyWait.maxWaitMs) * 1_000_000
        let entry = KeyWaitEntry(pending: pending, issuer: issuer, deadlineNs: deadline)
        queue.entries.append(entry)
        pending.connection.keyWait = entry
        inFlight += 1
        keepReadingClient(pending.connection)
        if queue.entries.count == 1 { armKeyWaitTimer(queue) }
        if !queue.asked {
            queue.asked = true
            shared.keysWanted(issuer: issuer)
        }
    }

    /// The main loop's answer: `issuer`'s refresh has ended (or none may run). Every request
    /// waiting for it is decided now.
    func keysSettled(_ issuer: String) {
        guard let queue = keyWaits[issuer] else { return }
        queue.asked = false
        let woken = queue.entries
        queue.entries.removeAll()
        if let timer = queue.timer { event_del(timer) }
        for entry in woken { resume(entry) }
    }

    /// A waiting request's client closed its connection: the request ends here (logged as
    /// `client_closed`). evhttp detaches a request it has not answered from a connection that
    /// fails (its `evcon` is then nil) and leaves it to its owner: it is freed here. A request
    /// still attached is freed by evhttp with the connection, after this callback.
    func keyWaitClientGone(_ entry: KeyWaitEntry) {
        guard let queue = keyWaits[entry.issuer], let index = queue.entries.firstIndex(where: { $0 === entry }) else { return }
        queue.entries.remove(at: index)
        if queue.entries.isEmpty, let timer = queue.timer { event_del(timer) }
        entry.pending.connection.keyWait = nil
        inFlight -= 1
        var log = entry.pending.log
        log.decision = .error
        log.reason = .clientClosed
        if evhttp_request_get_connection(entry.pending.req) == nil { evhttp_request_free(entry.pending.req) }
        finishLog(&log, startNs: entry.pending.startNs)
        exitIfDrained()
    }

    private func armKeyWaitTimer(_ queue: KeyWaitQueue) {
        guard let first = queue.entries.first else { return }
        if queue.timer == nil {
            queue.timer = gh_timer_new(base, 0, { _, _, arg in
                let queue = Unmanaged<KeyWaitQueue>.fromOpaque(arg!).takeUnretainedValue()
                queue.worker.keyWaitDeadline(queue)
            }, Unmanaged.passUnretained(queue).toOpaque())
        }
        let now = Clock.monotonicNs()
        let remainingMs = first.deadlineNs > now ? Int64((first.deadlineNs - now + 999_999) / 1_000_000) : 0
        _ = gh_timer_add_ms(queue.timer, remainingMs)
    }

    /// The oldest waits have reached their deadline: they are decided on the keys known now.
    private func keyWaitDeadline(_ queue: KeyWaitQueue) {
        let now = Clock.monotonicNs()
        let due = queue.entries.prefix { $0.deadlineNs <= now + 1_000_000 }
        queue.entries.removeFirst(due.count)
        armKeyWaitTimer(queue)
        for entry in due { resume(entry) }
    }

    private func resume(_ entry: KeyWaitEntry) {
        let conn = entry.pending.connection
        if conn.keyWait === entry { conn.keyWait = nil }
        inFlight -= 1
        restoreClientTimeouts(conn)
        decideAfterKeyWait(entry.pending, issuer: entry.issuer)
        flushClient(conn)
        exitIfDrained()
    }

    /// The decision after the wait (or instead of it): the request's own snapshot, the keys
    /// known now, and no second wait.
    private func decideAfterKeyWait(_ pending: PendingRequest, issuer: String) {
        let verifier = KeyWait.verifier(parked: pending.snapshot, current: snapshot, issuer: issuer)
        let auth = AuthContext(verifier: verifier, cache: tokenCache, now: Clock.wallMs() / 1000, mayWaitForKeys: false)
        carryOut(Decide.plan(pending.facts, under: pending.snapshot.decision, auth: auth), pending)
    }
}
