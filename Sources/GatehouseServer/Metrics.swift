import Synchronization
import GatehouseCore

/// Counters and histograms for `/metrics` (Prometheus text format 0.0.4). Each event loop
/// records into its own `WorkerMetrics` behind a lock that only the admin scrape contends for.
final class Metrics: Sendable {
    /// Upper bounds of the upstream latency histogram, in seconds.
    static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    struct RequestKey: Hashable {
        var route: String
        var statusClass: Int
        var decision: Decision
    }

    struct WorkerMetrics {
        var requests: [RequestKey: Int] = [:]
        var authFailures: [Reason: Int] = [:]
        var upstreamLatency: [String: Histogram] = [:]
        var openConnections = 0
    }

    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.latencyBuckets.count)
        var sum = 0.0
        var count = 0
        mutating func observe(_ seconds: Double) {
            for (i, bound) in Metrics.latencyBuckets.enumerated() where seconds <= bound {
                counts[i] += 1
                break
            }
            sum += seconds
            count += 1
        }
    }

    let workers: [Box]

    final class Box: Sendable {
        let state = Mutex(WorkerMetrics())
    }
    let reloads = Atomic<Int>(0)
    let reloadFailures = Atomic<Int>(0)
    let jwksRefreshes = Atomic<Int>(0)
    let jwksFailures = Atomic<Int>(0)
    let sessionStoreErrors = Atomic<Int>(0)
    /// WebSocket tunnels (SPEC §12): open now, and bytes relayed each way.
    let openTunnels = Atomic<Int>(0)
    let tunnelBytesToClient = Atomic<Int>(0)
    let tunnelBytesFromClient = Atomic<Int>(0)

    init(workerCount: Int) {
        workers = (0..<workerCount).map { _ in Box() }
    }

    func record(worker: Int, _ log: AccessLogRecord) {
        workers[worker].state.withLock { m in
            let key = RequestKey(route: log.route ?? "", statusClass: log.status / 100, decision: log.decision)
            m.requests[key, default: 0] += 1
            if log.decision == .deny, let reason = log.reason { m.authFailures[reason, default: 0] += 1 }
            if log.reason == .sessionStoreDown { sessionStoreErrors.add(1, ordering: .relaxed) }
            if let ms = log.upstreamMs, let upstream = log.upstream {
                m.upstreamLatency[upstream, default: Histogram()].observe(ms / 1000)
            }
        }
    }

    func connectionOpened(worker: Int) { workers[worker].state.withLock { $0.openConnections += 1 } }
    func connectionClosed(worker: Int) { workers[worker].state.withLock { $0.openConnections -= 1 } }

    /// The exposition text of every metric, summed over the workers.
    func render(droppedLogLines: Int) -> String {
        var requests: [RequestKey: Int] = [:]
        var failures: [Reason: Int] = [:]
        var latency: [String: Histogram] = [:]
        var open = 0
        for w in workers {
            w.state.withLock { m in
                requests.merge(m.requests, uniquingKeysWith: +)
                failures.merge(m.authFailures, uniquingKeysWith: +)
                for (name, h) in m.upstreamLatency {
                    var total = latency[name] ?? Histogram()
                    for i in total.counts.indices { total.counts[i] += h.counts[i] }
                    total.sum += h.sum
                    total.count += h.count
                    latency[name] = total
                }
                open += m.openConnections
            }
        }
        var out = "# HELP gatehouse_requests_total Requests by route, status class and decision.\n# TYPE gatehouse_requests_total counter\n"
        for (key, n) in requests.sorted(by: { "\($0.key)" < "\($1.key)" }) {
            out += "gatehouse_requests_total{route=\"\(label(key.route))\",status_class=\"\(key.statusClass)xx\",decision=\"\(key.decision.rawValue)\"} \(n)\n"
        }
        out += "# HELP gatehouse_denials_total Refused requests by reason.\n# TYPE gatehouse_denials_total counter\n"
        for (reason, n) in failures.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            out += "gatehouse_denials_total{reason=\"\(reason.rawValue)\"} \(n)\n"
        }
        out += "# HELP gatehouse_upstream_latency_seconds Time from forwarding to the upstream's response head.\n# TYPE gatehouse_upstream_latency_seconds histogram\n"
        for (name, h) in latency.sorted(by: { $0.key < $1.key }) {
            var cumulative = 0
            for (i, bound) in Metrics.latencyBuckets.enumerated() {
                cumulative += h.counts[i]
                out += "gatehouse_upstream_latency_seconds_bucket{upstream=\"\(label(name))\",le=\"\(bound)\"} \(cumulative)\n"
            }
            out += "gatehouse_upstream_latency_seconds_bucket{upstream=\"\(label(name))\",le=\"+Inf\"} \(h.count)\n"
            out += "gatehouse_upstream_latency_seconds_sum{upstream=\"\(label(name))\"} \(h.sum)\n"
            out += "gatehouse_upstream_latency_seconds_count{upstream=\"\(label(name))\"} \(h.count)\n"
        }
        out += "# HELP gatehouse_open_connections Client connections open now.\n# TYPE gatehouse_open_connections gauge\ngatehouse_open_connections \(open)\n"
        out += "# HELP gatehouse_config_reloads_total Successful config reloads.\n# TYPE gatehouse_config_reloads_total counter\ngatehouse_config_reloads_total \(reloads.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_config_reload_failures_total Rejected config reloads.\n# TYPE gatehouse_config_reload_failures_total counter\ngatehouse_config_reload_failures_total \(reloadFailures.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_jwks_refreshes_total Successful JWKS fetches.\n# TYPE gatehouse_jwks_refreshes_total counter\ngatehouse_jwks_refreshes_total \(jwksRefreshes.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_jwks_refresh_failures_total Failed JWKS fetches.\n# TYPE gatehouse_jwks_refresh_failures_total counter\ngatehouse_jwks_refresh_failures_total \(jwksFailures.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_session_store_errors_total Session store operations that failed (down, timeout).\n# TYPE gatehouse_session_store_errors_total counter\ngatehouse_session_store_errors_total \(sessionStoreErrors.load(ordering: .relaxed))\n"
        out += renderTunnels()
        out += "# HELP gatehouse_access_log_dropped_total Access-log lines dropped because the writer fell behind.\n# TYPE gatehouse_access_log_dropped_total counter\ngatehouse_access_log_dropped_total \(droppedLogLines)\n"
        return out
    }

    private func renderTunnels() -> String {
        "# HELP gatehouse_open_tunnels WebSocket tunnels open now.\n# TYPE gatehouse_open_tunnels gauge\n"
            + "gatehouse_open_tunnels \(openTunnels.load(ordering: .relaxed))\n"
            + "# HELP gatehouse_tunnel_bytes_total Bytes relayed through WebSocket tunnels, by direction.\n"
            + "# TYPE gatehouse_tunnel_bytes_total counter\n"
            + "gatehouse_tunnel_bytes_total{direction=\"to_client\"} \(tunnelBytesToClient.load(ordering: .relaxed))\n"
            + "gatehouse_tunnel_bytes_total{direction=\"from_client\"} \(tunnelBytesFromClient.load(ordering: .relaxed))\n"
    }

    private func label(_ value: String) -> String {
        value.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"").replacingOccurrences("\n", "\\n")
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard contains(target) else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
