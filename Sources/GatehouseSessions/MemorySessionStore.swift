import Synchronization

/// The default session store (`sessions.store: memory`): one per process, shared by every
/// event loop, so every method takes one short `Mutex` and calls its completion synchronously
/// on the calling thread before returning.
///
/// **Bounded.** At most ``capacity`` records. When a new one would exceed it, every dead
/// record (expired, or a tombstone past its `until`) is swept; if that frees nothing, the
/// least recently seen hundredth of the records go — tombstones first, then live sessions
/// (their users log in again). Otherwise a record is kept past its session's end until
/// ``SessionRecord/forgetAt(idleTimeout:)`` (a tombstone until its `until`), so that its cookie
/// is refused as expired or revoked each time, not as unknown; it is removed lazily after
/// that, when looked up or touched, or by ``sweep()`` should the server want to run it on a
/// timer.
///
/// Sessions last only as long as the process: use a Redis store to share them or keep them
/// across restarts.
public final class MemorySessionStore: SessionStore, Sendable {
    private struct Entry: Sendable {
        var record: SessionRecord
        /// Set by revoke: the tombstone is dead from then on.
        var tombstoneUntil: Int64?

        func isDead(now: Int64, idleTimeout: Int64) -> Bool {
            if let tombstoneUntil { return now >= tombstoneUntil }
            return record.state(now: now, idleTimeout: idleTimeout) != .active
        }

        /// Past its keeping time: a tombstone after its `until`, an ended session after
        /// ``SessionRecord/forgetAt(idleTimeout:)``. Until then a lookup returns the record, so
        /// that its cookie is refused with the precise reason.
        func isForgotten(now: Int64, idleTimeout: Int64) -> Bool {
            if let tombstoneUntil { return now >= tombstoneUntil }
            return now >= record.forgetAt(idleTimeout: idleTimeout)
        }
    }

    /// Most records kept.
    public let capacity: Int
    /// `sessions.idle_timeout` in seconds, to tell which records are dead.
    /// Seconds without activity after which a session ends; a reload may change it.
    public var idleTimeout: Int64 {
        get { idle.load(ordering: .relaxed) }
        set { idle.store(newValue, ordering: .relaxed) }
    }
    private let idle: Atomic<Int64>
    private let clock: @Sendable () -> Int64
    private let entries = Mutex<[String: Entry]>([:])

    /// An empty store. `clock` gives Unix seconds (tests inject their own).
    public init(capacity: Int = 100_000, idleTimeout: Int64, clock: @escaping @Sendable () -> Int64) {
        self.capacity = max(capacity, 1)
        self.idle = Atomic(idleTimeout)
        self.clock = clock
    }

    /// Records kept now, dead ones not yet swept included.
    public var count: Int { entries.withLock { $0.count } }

    public func create(_ record: SessionRecord, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        let now = clock()
        entries.withLock { entries in
            if entries[record.idHash] == nil, entries.count >= capacity {
                makeRoom(in: &entries, now: now)
            }
            entries[record.idHash] = Entry(record: record, tombstoneUntil: record.revoked ? record.absoluteExpiry : nil)
        }
        completion(.success(()))
    }

    /// Returns the record even when it is expired or revoked (so the caller can log why), until
    /// its keeping time is over (see the type's comment); then nil, and it is gone.
    public func lookup(idHash: String, completion: @escaping (Result<SessionRecord?, SessionStoreError>) -> Void) {
        let now = clock()
        let found: SessionRecord? = entries.withLock { entries in
            guard let entry = entries[idHash] else { return nil }
            if entry.isForgotten(now: now, idleTimeout: idleTimeout) {
                entries[idHash] = nil
                return nil
            }
            return entry.record
        }
        completion(.success(found))
    }

    public func touch(idHash: String, lastSeen: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        let now = clock()
        entries.withLock { entries in
            guard var entry = entries[idHash] else { return }
            if entry.isForgotten(now: now, idleTimeout: idleTimeout) {
                entries[idHash] = nil
            } else if !entry.isDead(now: now, idleTimeout: idleTimeout), entry.tombstoneUntil == nil,
                      lastSeen > entry.record.lastSeen {
                entry.record.lastSeen = lastSeen
                entries[idHash] = entry
            }
        }
        completion(.success(()))
    }

    public func revoke(idHash: String, until: Int64, completion: @escaping (Result<Void, SessionStoreError>) -> Void) {
        entries.withLock { entries in
            guard var entry = entries[idHash] else { return }
            entry.record.revoked = true
            entry.tombstoneUntil = until
            entries[idHash] = entry
        }
        completion(.success(()))
    }

    /// Removes every record past its keeping time now; returns how many. O(records) under the
    /// lock: run it off the loops if at all.
    @discardableResult
    public func sweep() -> Int {
        let now = clock()
        return entries.withLock { entries in
            let before = entries.count
            entries = entries.filter { !$0.value.isForgotten(now: now, idleTimeout: idleTimeout) }
            return before - entries.count
        }
    }

    /// Makes room for one record: dead ones first; else the least recently seen hundredth,
    /// tombstones before live sessions.
    private func makeRoom(in entries: inout [String: Entry], now: Int64) {
        entries = entries.filter { !$0.value.isDead(now: now, idleTimeout: idleTimeout) }
        guard entries.count >= capacity else { return }
        let batch = max(1, capacity / 100, entries.count - capacity + 1)
        let victims = entries.sorted { lhs, rhs in
            let lhsTomb = lhs.value.tombstoneUntil != nil, rhsTomb = rhs.value.tombstoneUntil != nil
            if lhsTomb != rhsTomb { return lhsTomb }
            return lhs.value.record.lastSeen < rhs.value.record.lastSeen
        }.prefix(batch)
        for victim in victims { entries[victim.key] = nil }
    }
}
