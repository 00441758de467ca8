import CLibevent
import GatehouseCore
import GatehouseConfig

/// Kept-alive connections to one upstream target, owned by one event loop (all methods are
/// called on that loop; no locks). An `evhttp_connection` carries one request at a time: idle
/// connections wait on a stack, new ones are made up to `maxActive`, then requests queue.
final class TargetPool {
    let target: ResolvedTarget
    private let base: OpaquePointer
    private var idle: [OpaquePointer] = []
    private var active = 0
    private var waiters: [(OpaquePointer) -> Void] = []
    var maxIdle: Int
    var timeoutMs: Int64
    static let maxActive = 1024

    /// Passive health (SPEC §2): 3 connect failures in a row mark the target down for 10 s.
    private var failuresInARow = 0
    private var downUntilNs: UInt64 = 0

    init(target: ResolvedTarget, base: OpaquePointer, maxIdle: Int, timeoutMs: Int64) {
        self.target = target
        self.base = base
        self.maxIdle = maxIdle
        self.timeoutMs = timeoutMs
    }

    deinit {
        for evcon in idle { evhttp_connection_free(evcon) }
    }

    var isDown: Bool { downUntilNs > Clock.monotonicNs() }

    func recordConnectFailure() {
        failuresInARow += 1
        if failuresInARow >= 3 {
            downUntilNs = Clock.monotonicNs() + 10_000_000_000
            failuresInARow = 0
        }
    }

    func recordSuccess() { failuresInARow = 0 }

    /// An idle kept-alive connection, if one is there (the common case: no closure needed).
    func takeIdle() -> OpaquePointer? {
        guard let evcon = idle.popLast() else { return nil }
        active += 1
        return evcon
    }

    /// A connection now, or later through `ready` when the pool is at its cap.
    /// `reused` tells whether it carried a request before (a stale close is possible).
    func acquire(_ ready: @escaping (OpaquePointer) -> Void) -> (OpaquePointer, reused: Bool)? {
        if let evcon = idle.popLast() {
            active += 1
            return (evcon, true)
        }
        if active < TargetPool.maxActive {
            active += 1
            return (makeConnection(), false)
        }
        waiters.append(ready)
        return nil
    }

    /// A brand-new connection, for the retry of a request that failed on a reused one.
    func acquireFresh() -> OpaquePointer {
        active += 1
        return makeConnection()
    }

    /// Gives a connection back. `reusable` is false after an error or a cancelled request:
    /// that connection is freed.
    func release(_ evcon: OpaquePointer, reusable: Bool) {
        if !waiters.isEmpty {
            let next = waiters.removeFirst()
            if reusable {
                next(evcon)
            } else {
                evhttp_connection_free(evcon)
                next(makeConnection())
            }
            return
        }
        active -= 1
        if reusable && idle.count < maxIdle {
            idle.append(evcon)
        } else {
            evhttp_connection_free(evcon)
        }
    }

    private func makeConnection() -> OpaquePointer {
        let evcon = evhttp_connection_base_new(base, nil, target.address, target.target.port)!
        evhttp_connection_set_retries(evcon, 0)
        var tv = timeval(tv_sec: Int(timeoutMs / 1000), tv_usec: Int((timeoutMs % 1000) * 1000))
        evhttp_connection_set_timeout_tv(evcon, &tv)
        return evcon
    }
}

/// Round robin over an upstream's targets, skipping those marked down (SPEC §2).
struct UpstreamBalancer {
    private var next = 0

    /// The next healthy target's pool, or nil when every target is down.
    mutating func pick(_ pools: [TargetPool], skipping: TargetPool? = nil) -> TargetPool? {
        guard !pools.isEmpty else { return nil }
        for i in 0..<pools.count {
            let pool = pools[(next + i) % pools.count]
            if !pool.isDown && pool !== skipping {
                next = (next + i + 1) % pools.count
                return pool
            }
        }
        return nil
    }
}
