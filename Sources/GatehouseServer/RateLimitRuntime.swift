import Synchronization
import GatehouseCore
import GatehouseConfig
import GatehouseDecision

/// The process-wide side of rate limits (SPEC §13): the memory store's table (made on first
/// use, kept across reloads so that buckets survive them), the counters of `/metrics` and the
/// rate of the store-error log line.
///
/// Threading: any thread.
final class RateLimitRuntime: Sendable {
    private let table = Mutex<RateLimitTable?>(nil)
    /// Requests that passed because the store did not answer.
    let storeErrors = Atomic<Int>(0)
    /// When the last store error was logged (monotonic ms; 0: never).
    private let lastErrorLogMs = Atomic<Int64>(0)
    /// 429s by route.
    private let refusals = Mutex<[String: Int]>([:])

    static let errorLogIntervalMs: Int64 = 10_000

    /// The memory store's table. Its size is set by the first config that uses it: a reload
    /// that changes `rate_limits.max_keys` takes effect at the next start (the buckets would be
    /// lost otherwise).
    func table(maxKeys: Int) -> RateLimitTable {
        table.withLock { table in
            if let table { return table }
            let made = RateLimitTable(maxKeys: maxKeys)
            table = made
            return made
        }
    }

    /// Dropped live keys of the memory store.
    var droppedKeys: Int { table.withLock { $0?.dropped.load(ordering: .relaxed) ?? 0 } }

    func refused(route: String) {
        refusals.withLock { $0[route, default: 0] += 1 }
    }

    /// Counts a store failure; returns true when it is the first in ``errorLogIntervalMs``
    /// (then the caller logs it).
    func storeFailed(nowMs: Int64) -> Bool {
        storeErrors.add(1, ordering: .relaxed)
        let last = lastErrorLogMs.load(ordering: .relaxed)
        guard last == 0 || nowMs - last >= Self.errorLogIntervalMs else { return false }
        return lastErrorLogMs.compareExchange(expected: last, desired: max(1, nowMs), ordering: .relaxed).exchanged
    }

    /// The rate-limit metrics in Prometheus text format.
    func render() -> String {
        var out = "# HELP gatehouse_rate_limited_total Requests refused by a route's rate limit (429).\n"
            + "# TYPE gatehouse_rate_limited_total counter\n"
        for (route, n) in refusals.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
            out += "gatehouse_rate_limited_total{route=\"\(Self.label(route))\"} \(n)\n"
        }
        out += "# HELP gatehouse_rate_limit_store_errors_total Requests let through because the rate-limit store did not answer.\n"
            + "# TYPE gatehouse_rate_limit_store_errors_total counter\n"
            + "gatehouse_rate_limit_store_errors_total \(storeErrors.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_rate_limit_keys_dropped_total Live buckets the memory store dropped to make room (least recently used first).\n"
            + "# TYPE gatehouse_rate_limit_keys_dropped_total counter\n"
            + "gatehouse_rate_limit_keys_dropped_total \(droppedKeys)\n"
        return out
    }

    private static func label(_ value: String) -> String {
        value.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"").replacingOccurrences("\n", "\\n")
    }
}
