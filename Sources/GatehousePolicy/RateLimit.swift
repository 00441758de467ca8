/// A route's `rate_limit` (SPEC §2 `routes[].rate_limit`, §13): `burst` requests at once per
/// key, refilled at `count` per `unit`, as a token bucket (GCRA, see ``GCRA``).
///
/// A class, immutable: a ``Route`` is copied several times per request, and a reference adds
/// one retain to each copy where the values would add a wider copy (measured with
/// deploy/bench/ratelimit.sh).
public final class RateLimit: Sendable, Equatable {
    /// The unit of `rate` (`N/s`, `N/m`, `N/h`).
    public enum Unit: String, Sendable, CaseIterable {
        case second = "s", minute = "m", hour = "h"

        /// The unit's length in microseconds.
        public var micros: Int64 {
            switch self {
            case .second: return 1_000_000
            case .minute: return 60_000_000
            case .hour: return 3_600_000_000
            }
        }
    }

    /// What a request is counted under (SPEC §13).
    public enum Key: Sendable, Equatable {
        /// The authenticated issuer and subject; the client address when anonymous.
        case subject
        /// The client address of SPEC §7.1 (IPv6 per /64).
        case client
        /// That header's value when a trusted proxy sets it, else the client address. The name
        /// is lowercased.
        case header(String)

        /// As written in the config (`subject`, `client`, `header:x-api-key`).
        public var text: String {
            switch self {
            case .subject: return "subject"
            case .client: return "client"
            case .header(let name): return "header:" + name
            }
        }
    }

    /// The largest `N` of `N/unit` and the largest `burst`: the GCRA's times stay exact in
    /// microseconds (at most one request per µs) and far from overflowing an `Int64` (and
    /// within the 2^53 that Redis's Lua numbers hold exactly).
    public static let maxCount = 1_000_000
    public static let maxBurst = 1_000_000

    public let count: Int
    public let unit: Unit
    public let burst: Int
    public let key: Key
    /// The time one request uses up: `unit / count`, in microseconds (rounded down, at least 1).
    public let intervalMicros: Int64
    /// How far ahead of now the bucket's theoretical arrival time may run: `burst × interval`.
    public let toleranceMicros: Int64

    /// `count` in 1...``maxCount``, `burst` in 1...``maxBurst`` (the config checks both).
    public init(count: Int, unit: Unit, burst: Int, key: Key) {
        self.count = min(max(count, 1), Self.maxCount)
        self.unit = unit
        self.burst = min(max(burst, 1), Self.maxBurst)
        self.key = key
        intervalMicros = max(1, unit.micros / Int64(self.count))
        toleranceMicros = intervalMicros * Int64(self.burst)
    }

    /// `rate` as written: `20/s`.
    public var rateText: String { "\(count)/\(unit.rawValue)" }

    /// `20/s, burst 40, key subject`.
    public var description: String { "\(rateText), burst \(burst), key \(key.text)" }

    public static func == (lhs: RateLimit, rhs: RateLimit) -> Bool {
        lhs.count == rhs.count && lhs.unit == rhs.unit && lhs.burst == rhs.burst && lhs.key == rhs.key
    }
}

/// The generic cell rate algorithm (GCRA, ITU-T I.371; the "virtual scheduling" form): a
/// token bucket kept as one number per key, its theoretical arrival time (TAT). A request at
/// `now` is admitted when `max(TAT, now) + interval − now ≤ burst × interval`, and then moves
/// the TAT to `max(TAT, now) + interval`; a refused one leaves it. A fresh key's TAT is 0 (any
/// time in the past): `burst` requests pass at once, then one per interval.
public enum GCRA {
    /// What one request gets.
    public enum Outcome: Equatable, Sendable {
        /// Admitted: the key's new TAT.
        case allowed(tat: Int64)
        /// Refused: the key's TAT stays; the request would be admitted `retryAfterMicros` later.
        case limited(retryAfterMicros: Int64)
    }

    /// The outcome of a request at `now` for a key whose TAT is `tat` (all in microseconds).
    @inlinable
    public static func admit(tat: Int64, now: Int64, interval: Int64, tolerance: Int64) -> Outcome {
        let next = max(tat, now) &+ interval
        let ahead = next &- now
        if ahead <= tolerance { return .allowed(tat: next) }
        return .limited(retryAfterMicros: ahead &- tolerance)
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1 (SPEC §13).
    public static func retryAfterSeconds(_ micros: Int64) -> Int64 {
        max(1, (max(0, micros) + 999_999) / 1_000_000)
    }
}
