import Glibc
import Synchronization
import GatehousePolicy
import GatehouseDecision

/// The memory store of `rate_limits` (SPEC §13): one GCRA timestamp (TAT) per key, in one
/// table shared by every loop of the process, so that a limit is exact for the instance
/// whatever worker a request lands on (not `rate ÷ workers`).
///
/// **Layout.** A set-associative table allocated once: `sets` sets of ``ways`` slots, each slot
/// a key's 64-bit hash (its tag), its TAT and when it was last used (µs). A key lives in the
/// set its hash picks; a lock guards a stripe of sets (``lockCount`` locks, so two loops rarely
/// meet on one). No request allocates: a hit updates a slot in place, a miss takes a slot of
/// its set.
///
/// **Bounded, expired keys reclaimed.** A slot whose TAT has passed is as good as empty (a
/// fresh key would get the same answer), so a miss takes an empty or expired slot first;
/// only when all ``ways`` slots of the set hold live buckets is the least recently used of
/// them dropped (approximate LRU, per set), counted in ``dropped``. Dropping a live bucket
/// forgets how much of its burst a key has used: that key may get up to one extra burst.
///
/// **Keys.** The hash is Swift's `Hasher` (SipHash, seeded per process: a client cannot aim
/// keys at one set or collide with another caller without the seed) over the route, the key
/// kind, scope and value. Two keys whose 64-bit hashes are equal would share a bucket; with a
/// million live keys that happens with probability ~10⁻⁷.
///
/// Threading: any thread; ``admit(hash:now:limit:)`` takes one stripe lock.
final class RateLimitTable: @unchecked Sendable {
    struct Slot {
        /// The key's hash with the low bit set (0 means empty).
        var tag: UInt64
        var tat: Int64
        var used: Int64
    }

    static let ways = 8
    let sets: Int
    let lockCount: Int
    private let slots: UnsafeMutablePointer<Slot>
    private let locks: UnsafeMutablePointer<pthread_mutex_t>
    /// Live buckets dropped to make room (`gatehouse_rate_limit_keys_dropped_total`).
    let dropped = Atomic<Int>(0)

    /// Room for at least `maxKeys` keys (rounded up to a power of two of sets).
    init(maxKeys: Int) {
        var sets = 1
        while sets * Self.ways < max(1, maxKeys) { sets <<= 1 }
        self.sets = sets
        lockCount = min(sets, 256)
        slots = .allocate(capacity: sets * Self.ways)
        slots.initialize(repeating: Slot(tag: 0, tat: 0, used: 0), count: sets * Self.ways)
        locks = .allocate(capacity: lockCount)
        for i in 0..<lockCount { pthread_mutex_init(locks + i, nil) }
    }

    deinit {
        for i in 0..<lockCount { pthread_mutex_destroy(locks + i) }
        locks.deallocate()
        slots.deallocate()
    }

    /// How many keys it holds at most.
    var capacity: Int { sets * Self.ways }

    /// The hash of `key` (see the type's comment).
    static func hash(_ key: RateLimitKey) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(key.route)
        hasher.combine(key.kind.rawValue)
        hasher.combine(key.scope)
        hasher.combine(key.value)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// One request of the key hashed `hash` at `now` (µs, any monotonic clock shared by the
    /// callers) under `limit`.
    func admit(hash: UInt64, now: Int64, limit: RateLimit) -> RateLimitAnswer {
        let tag = hash | 1
        let set = Int(truncatingIfNeeded: hash >> 17) & (sets - 1)
        let lock = locks + (set & (lockCount - 1))
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        let base = slots + set * Self.ways
        var free = -1
        var oldest = -1
        var oldestUsed = Int64.max
        for i in 0..<Self.ways {
            let slot = base[i]
            if slot.tag == tag { return admit(base + i, now: now, limit: limit) }
            if slot.tag == 0 || slot.tat <= now {
                if free < 0 { free = i }
            } else if slot.used < oldestUsed {
                oldest = i
                oldestUsed = slot.used
            }
        }
        if free < 0 {
            free = oldest
            dropped.add(1, ordering: .relaxed)
        }
        base[free] = Slot(tag: tag, tat: 0, used: now)
        return admit(base + free, now: now, limit: limit)
    }

    private func admit(_ slot: UnsafeMutablePointer<Slot>, now: Int64, limit: RateLimit) -> RateLimitAnswer {
        slot.pointee.used = now
        switch GCRA.admit(tat: slot.pointee.tat, now: now, interval: limit.intervalMicros, tolerance: limit.toleranceMicros) {
        case .allowed(let tat):
            slot.pointee.tat = tat
            return .allowed
        case .limited(let retry):
            return .limited(retryAfterMicros: retry)
        }
    }

    /// Keys whose bucket is not yet full again at `now` (for tests).
    func liveKeys(now: Int64) -> Int {
        var live = 0
        for set in 0..<sets {
            let lock = locks + (set & (lockCount - 1))
            pthread_mutex_lock(lock)
            for i in 0..<Self.ways where slots[set * Self.ways + i].tag != 0 && slots[set * Self.ways + i].tat > now { live += 1 }
            pthread_mutex_unlock(lock)
        }
        return live
    }
}
