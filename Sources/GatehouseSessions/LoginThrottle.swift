import Synchronization

/// Login throttling per username + client address (SPEC §2 `max_failures`, `failure_window`):
/// after `maxFailures` failed logins of one key within `window` seconds, every attempt of that
/// key is refused — 429 with `Retry-After` — until `window` seconds after the failure that
/// reached the limit. A success clears the key.
///
/// **Shared, not per loop.** One instance serves every event loop behind a `Mutex` (each call
/// is a dictionary access): per-loop counters would let a client spread over N loops make N
/// times the attempts.
///
/// **Two steps, because checks are asynchronous.** ``admit(username:client:)`` before
/// submitting a password check counts the attempt as in flight, and
/// ``finish(username:client:outcome:)`` settles it. Failures plus attempts in flight never
/// exceed `maxFailures`, so a client cannot fire a hundred guesses at once while the first
/// checks are still running: at most `maxFailures` passwords are tried per key and window. An
/// attempt refused only because others are in flight gets `retryAfter: 1`.
///
/// **One process.** This count is the process's own. With a shared session store the count
/// lives in the store (`RedisSessionStore`'s login failure scripts follow the same rules, under
/// ``sharedKey(username:client:)``), and this one serves only while the store cannot answer.
///
/// **Bounded.** At most `capacity` keys. When full, keys whose window has passed are dropped;
/// if none has, the oldest hundredth goes, keys not locked out first.
public final class LoginThrottle: Sendable {
    /// Whether an attempt may go ahead.
    public enum Verdict: Sendable, Equatable {
        /// Go ahead: check the password, then call ``LoginThrottle/finish(username:client:outcome:)``.
        case allowed
        /// Refuse with 429 and `Retry-After: retryAfter` (seconds, at least 1); do not call `finish`.
        case refused(retryAfter: Int64)
    }

    /// How an admitted attempt ended.
    public enum Outcome: Sendable, Equatable {
        /// Right password: the key is cleared.
        case succeeded
        /// Wrong password or unknown user: counts toward the limit.
        case failed
        /// Not checked after all (the check pool was busy, the request failed): not counted.
        case abandoned
    }

    private struct Entry: Sendable {
        var windowStart: Int64
        var failures = 0
        var inFlight = 0
        var lockedUntil: Int64?
    }

    /// Failures that lock a key out.
    public let maxFailures: Int
    /// `failure_window` in seconds: how long failures count, and how long a lockout lasts.
    public let window: Int64
    /// Most keys remembered.
    public let capacity: Int
    private let clock: @Sendable () -> Int64
    private let entries = Mutex<[String: Entry]>([:])

    /// A throttle with no history. `clock` gives Unix seconds (tests inject their own).
    public init(maxFailures: Int = 5, window: Int64 = 900, capacity: Int = 50_000,
                clock: @escaping @Sendable () -> Int64) {
        self.maxFailures = max(maxFailures, 1)
        self.window = max(window, 1)
        self.capacity = max(capacity, 1)
        self.clock = clock
    }

    /// Keys remembered now.
    public var count: Int { entries.withLock { $0.count } }

    /// Asks whether `username` from `client` may try a password now; when allowed, the
    /// attempt is in flight until ``finish(username:client:outcome:)``.
    public func admit(username: String, client: String) -> Verdict {
        let now = clock()
        let key = Self.key(username: username, client: client)
        return entries.withLock { entries in
            var entry = current(entries[key], now: now) ?? Entry(windowStart: now)
            if let lockedUntil = entry.lockedUntil {
                return .refused(retryAfter: max(lockedUntil - now, 1))
            }
            // Attempts in flight count as failures until they end: a burst of guesses fired
            // before any failure is recorded still tries at most max_failures passwords.
            if entry.failures + entry.inFlight >= maxFailures {
                return .refused(retryAfter: 1)
            }
            entry.inFlight += 1
            store(entry, at: key, in: &entries, now: now)
            return .allowed
        }
    }

    /// Settles an attempt that ``admit(username:client:)`` allowed.
    public func finish(username: String, client: String, outcome: Outcome) {
        let now = clock()
        let key = Self.key(username: username, client: client)
        entries.withLock { entries in
            var entry = current(entries[key], now: now) ?? Entry(windowStart: now)
            entry.inFlight = max(entry.inFlight - 1, 0)
            switch outcome {
            case .succeeded:
                entries[key] = nil
                return
            case .failed:
                entry.failures += 1
                if entry.failures >= maxFailures { entry.lockedUntil = now + window }
            case .abandoned:
                break
            }
            if entry.failures == 0, entry.inFlight == 0, entry.lockedUntil == nil {
                entries[key] = nil
            } else {
                store(entry, at: key, in: &entries, now: now)
            }
        }
    }

    /// The entry if it still counts at `now`: nil once its lockout has ended, or — when not
    /// locked out — once its window has passed (attempts still in flight are forgotten too,
    /// so a lost `finish` cannot lock a key forever).
    private func current(_ entry: Entry?, now: Int64) -> Entry? {
        guard let entry else { return nil }
        if let lockedUntil = entry.lockedUntil { return now < lockedUntil ? entry : nil }
        return now < entry.windowStart + window ? entry : nil
    }

    private func store(_ entry: Entry, at key: String, in entries: inout [String: Entry], now: Int64) {
        if entries[key] == nil, entries.count >= capacity { makeRoom(in: &entries, now: now) }
        entries[key] = entry
    }

    /// Drops stale keys; if none was stale, the oldest hundredth, unlocked keys first.
    private func makeRoom(in entries: inout [String: Entry], now: Int64) {
        entries = entries.filter { current($0.value, now: now) != nil }
        guard entries.count >= capacity else { return }
        let batch = max(1, capacity / 100, entries.count - capacity + 1)
        let victims = entries.sorted { lhs, rhs in
            let lhsLocked = lhs.value.lockedUntil != nil, rhsLocked = rhs.value.lockedUntil != nil
            if lhsLocked != rhsLocked { return !lhsLocked }
            return lhs.value.windowStart < rhs.value.windowStart
        }.prefix(batch)
        for victim in victims { entries[victim.key] = nil }
    }

    /// The key of `username` from `client` in a shared store: the hex SHA-256 of both joined by
    /// a NUL, so that neither a username nor an address ever reaches the store and every key
    /// has the same length whatever the username.
    public static func sharedKey(username: String, client: String) -> String {
        SessionID.hash(key(username: username, client: client))
    }

    /// Username and client joined by a NUL, which neither can contain (LoginRequest refuses
    /// control characters in usernames; client addresses are IP literals).
    private static func key(username: String, client: String) -> String {
        username + "\u{0}" + client
    }
}
