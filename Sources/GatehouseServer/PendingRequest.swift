import GatehouseCore
import GatehouseAuth
import GatehousePolicy
import GatehouseDecision

/// A request between the steps of its decision: the facts it is decided on, the configuration
/// snapshot it started under, and what answering it needs. Made when a request is about to
/// wait (the hot path hands the same parts to `carryOut` one by one, without this copy); every
/// asynchronous wait (the session store, a key refresh) carries it and the continuation
/// decides and forwards from it alone.
///
/// This is how SPEC §3's rule — a request is decided and forwarded entirely under the snapshot
/// it started with — is kept: `snapshot` is the only config a continuation has, and the waits'
/// own values (``SessionWait``, the route of ``Plan/needsKeys(_:issuer:)``) were taken from that
/// same snapshot. Nothing after a wait reads ``Worker/snapshot``, the loop's *current*
/// snapshot, which a reload may have replaced meanwhile.
///
/// Threading: lives on its worker's loop (it holds the evhttp request).
struct PendingRequest {
    let req: Request
    let snapshot: Snapshot
    let facts: RequestFacts
    var log: AccessLogRecord
    let startNs: UInt64
    let connection: ClientConnection
    /// Who carries the plan out after the wait: nil for the proxy (`Worker.carryOut`); another
    /// front-end (forward auth) sets its own, and the waits stay shared.
    var carrier: ((Worker, Plan, PendingRequest) -> Void)? = nil
}

/// The wait of an unknown `kid` for its issuer's keys (SPEC §3.2 Keys, §5.2).
enum KeyWait {
    /// The longest a request waits for a refresh; then it is decided on the keys known then.
    static let maxWaitMs: Int64 = 2000
    /// Requests that may wait for one issuer's keys at once (the whole process); beyond that
    /// they are decided at once.
    static let maxWaitersPerIssuer = 1024

    /// Waiters allowed per issuer on each of `workers` loops: the process-wide bound shared out.
    static func waitersPerLoop(workers: Int) -> Int { max(1, maxWaitersPerIssuer / max(1, workers)) }

    /// The verifier a request is decided with after waiting for `issuer`'s keys: the keys known
    /// now, under the configuration the request started with.
    ///
    /// - No reload meanwhile (`current` is of the same config generation, its verifier newer
    ///   only by fetched keys): `current`'s verifier, the one the loop serves with, so the token
    ///   cache keeps working.
    /// - A reload landed meanwhile: the request's own verifier (its issuers, algorithms,
    ///   audiences, leeway), with `issuer`'s key set taken from `current` when that still has an
    ///   issuer of that name — keys are data fetched from the issuer, not configuration. The
    ///   routes, requirements and everything else stay the request's own snapshot's.
    static func verifier(parked: Snapshot, current: Snapshot, issuer: String) -> JWTVerifier? {
        if parked.generation == current.generation { return current.verifier }
        guard let own = parked.verifier else { return nil }
        guard let keys = current.verifier?.issuers.first(where: { $0.name == issuer })?.keys else { return own }
        return own.replacingKeys(keys, forIssuer: issuer)
    }
}
