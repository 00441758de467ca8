import CLibevent
import Glibc
import GatehouseCore
import GatehouseConfig

/// Kept-alive connections to one upstream target, owned by one event loop (all methods are
/// called on that loop; no locks). An `UpstreamConnection` carries one request at a time: idle
/// connections wait on a stack (still watched for a close), new ones are made up to
/// `maxActive`, then requests queue.
final class TargetPool {
    let target: ResolvedTarget
    let base: OpaquePointer
    private var idle: [UpstreamConnection] = []
    private var active = 0
    private var waiters: [(UpstreamConnection) -> Void] = []
    var maxIdle: Int
    var timeoutMs: Int64
    static let maxActive = 1024
    /// The target's socket address, parsed once.
    private var address = sockaddr_storage()
    private var addressLength: socklen_t = 0
    /// One read buffer for every connection of the pool (they all run on the same loop).
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    /// Passive health (SPEC §2): 3 connect failures in a row mark the target down for 10 s.
    private var failuresInARow = 0
    private var downUntilNs: UInt64 = 0

    init(target: ResolvedTarget, base: OpaquePointer, maxIdle: Int, timeoutMs: Int64) {
        self.target = target
        self.base = base
        self.maxIdle = maxIdle
        self.timeoutMs = timeoutMs
        let port = UInt16(truncatingIfNeeded: target.target.port).bigEndian
        withUnsafeMutablePointer(to: &address) { storage in
            if target.address.contains(":") {
                storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                    sin6.pointee.sin6_port = port
                    _ = inet_pton(AF_INET6, target.address, &sin6.pointee.sin6_addr)
                }
                addressLength = socklen_t(MemoryLayout<sockaddr_in6>.size)
            } else {
                storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    sin.pointee.sin_family = sa_family_t(AF_INET)
                    sin.pointee.sin_port = port
                    _ = inet_pton(AF_INET, target.address, &sin.pointee.sin_addr)
                }
                addressLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        }
    }

    deinit {
        for connection in idle { connection.close() }
        readBuffer.deallocate()
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

    private var lastTLSFailureNoteNs: UInt64 = 0

    /// An `https://` target's handshake failed (a 502 with `upstream_connect_failed` follows):
    /// the reason goes to the gateway's log, at most once a minute per target and loop.
    func noteTLSFailure(_ reason: String) {
        let now = Clock.monotonicNs()
        guard lastTLSFailureNoteNs == 0 || now - lastTLSFailureNoteNs >= 60_000_000_000 else { return }
        lastTLSFailureNoteNs = now
        Gateway.say("upstream \(target.target): TLS handshake failed: \(reason)")
    }

    /// An idle kept-alive connection, if one is there (the common case: no closure needed).
    /// One with bytes (or a close) pending is closed instead (SPEC §3.2): its read event may
    /// not have run yet in this loop turn, and the next request must not read them as its answer.
    func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.hasPendingInput {
                connection.close()
                continue
            }
            active += 1
            return connection
        }
        return nil
    }

    /// A connection now, or later through `ready` when the pool is at its cap.
    /// `reused` tells whether it carried a request before (a stale close is possible).
    func acquire(_ ready: @escaping (UpstreamConnection) -> Void) -> (UpstreamConnection, reused: Bool)? {
        if let connection = takeIdle() { return (connection, true) }
        if active < TargetPool.maxActive {
            active += 1
            return (makeConnection(), false)
        }
        waiters.append(ready)
        return nil
    }

    /// A brand-new connection, for the retry of a request that failed on a reused one.
    func acquireFresh() -> UpstreamConnection {
        active += 1
        return makeConnection()
    }

    /// Gives a connection back. One that is not `reusable` (an error, a cancelled request, a
    /// `Connection: close`) is closed, and so is one handed straight to a waiting request with
    /// bytes pending (as in `takeIdle`).
    func release(_ connection: UpstreamConnection) {
        if !waiters.isEmpty {
            let next = waiters.removeFirst()
            if connection.reusable && !connection.hasPendingInput { return next(connection) }
            connection.close()
            next(makeConnection())
            return
        }
        let reusable = connection.reusable
        if !reusable { connection.close() }
        active -= 1
        if reusable && idle.count < maxIdle {
            idle.append(connection)
        } else {
            connection.close()
        }
    }

    /// An idle connection closed by its upstream (or sent stray bytes): forgotten.
    func dropIdle(_ connection: UpstreamConnection) {
        if let index = idle.lastIndex(where: { $0 === connection }) { idle.remove(at: index) }
    }

    /// Runs `body` on the next loop turn.
    func later(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(DeferredWork(body)).toOpaque()
        event_base_once(base, -1, gh_ev_timeout(), { _, _, arg in
            Unmanaged<DeferredWork>.fromOpaque(arg!).takeRetainedValue().body()
        }, box, nil)
    }

    private func makeConnection() -> UpstreamConnection {
        withUnsafePointer(to: &address) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                UpstreamConnection(pool: self, address: $0, length: addressLength)
            }
        }
    }
}

/// Round robin over an upstream's targets, skipping those marked down (SPEC §2).
/// A worker's record of one upstream (by name): its target pools under the worker's current
/// snapshot (nil until first used after a reload) and its round-robin position.
final class UpstreamTargets {
    var pools: [TargetPool]?
    var balancer = UpstreamBalancer()
}

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
