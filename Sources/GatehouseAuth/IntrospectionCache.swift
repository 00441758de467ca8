/// Introspection answers by token hash (SPEC §14.3): an active answer until `min(exp, cache)`,
/// an inactive one for ``inactiveSeconds``. Bounded: at ``capacity`` entries the expired ones are
/// dropped, and if that frees nothing, an arbitrary tenth of the entries — a flood of distinct
/// tokens costs provider calls (bounded per client elsewhere), never memory.
///
/// Holds hashes and the provider's answers only, never a token. Not thread-safe: one per loop
/// (and one on the main loop, shared by the loops through their requests).
public final class IntrospectionCache {
    public struct Entry: Sendable {
        public let answer: IntrospectionAnswer
        /// Whole seconds (wall clock) after which the entry is not used.
        public let until: Int64

        public init(answer: IntrospectionAnswer, until: Int64) {
            self.answer = answer
            self.until = until
        }
    }

    /// How long an inactive answer is kept (SPEC §14.3).
    public static let inactiveSeconds: Int64 = 10
    public let capacity: Int
    private var entries: [IntrospectionKey: Entry] = [:]

    public init(capacity: Int = 10_000) { self.capacity = max(1, capacity) }

    public var count: Int { entries.count }

    /// The entry for `key` while it is fresh at `now`; an expired one is dropped.
    public func lookup(_ key: IntrospectionKey, now: Int64) -> Entry? {
        guard let entry = entries[key] else { return nil }
        if entry.until > now { return entry }
        entries[key] = nil
        return nil
    }

    /// Keeps `answer` for `key`: active until `min(exp, now + cacheSeconds)`, inactive for
    /// ``inactiveSeconds``. An active answer already expired, or a cache of 0 s, is not kept.
    @discardableResult
    public func store(_ answer: IntrospectionAnswer, for key: IntrospectionKey, now: Int64, cacheSeconds: Int64) -> Entry {
        let until = Self.until(answer, now: now, cacheSeconds: cacheSeconds)
        let entry = Entry(answer: answer, until: until)
        guard until > now else { return entry }
        if entries.count >= capacity, entries[key] == nil { makeRoom(now: now) }
        entries[key] = entry
        return entry
    }

    /// Keeps an entry made elsewhere (another loop's cache, the main loop's) while it is fresh.
    public func keep(_ entry: Entry, for key: IntrospectionKey, now: Int64) {
        guard entry.until > now else { return }
        if entries.count >= capacity, entries[key] == nil { makeRoom(now: now) }
        entries[key] = entry
    }

    /// How long `answer` may be used from `now`.
    public static func until(_ answer: IntrospectionAnswer, now: Int64, cacheSeconds: Int64) -> Int64 {
        guard answer.active else { return now + inactiveSeconds }
        let capped = now + max(0, cacheSeconds)
        return answer.expiresAt.map { min($0, capped) } ?? capped
    }

    private func makeRoom(now: Int64) {
        entries = entries.filter { $0.value.until > now }
        guard entries.count >= capacity else { return }
        var drop = max(1, capacity / 10)
        for key in entries.keys {
            entries[key] = nil
            drop -= 1
            if drop == 0 { break }
        }
    }
}
