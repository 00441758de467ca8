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

    /// One request key's count and durations: one dictionary lookup per request for both
    /// (a second table by route cost ~450 instructions per request, callgrind-jwt.sh).
    struct RequestStats {
        var count = 0
        var duration = Histogram()

        mutating func add(seconds: Double) {
            count += 1
            duration.observe(seconds)
        }
    }

    struct WorkerMetrics {
        var requests: [RequestKey: RequestStats] = [:]
        var authFailures: [Reason: Int] = [:]
        var upstreamLatency: [String: Histogram] = [:]
        var openConnections = 0
        var shadowRefusals: [ShadowKey: Int] = [:]
        /// Where the last request was counted: the next one, most often of the same route,
        /// status class and decision (and upstream), is counted there after comparing keys,
        /// without hashing the route's name (two String hashes were ~900 instructions per
        /// request). Only `count` inserts into these tables, and it renews the index whenever
        /// it does, so the index is always one of the table's current ones.
        private var lastRequest: (key: RequestKey, index: Dictionary<RequestKey, RequestStats>.Index)?
        private var lastUpstream: (name: String, index: Dictionary<String, Histogram>.Index)?

        mutating func count(_ key: RequestKey, seconds: Double) {
            if let last = lastRequest, last.key == key {
                requests.values[last.index].add(seconds: seconds)
                return
            }
            if requests[key] == nil { requests[key] = RequestStats() }
            let index = requests.index(forKey: key)!
            requests.values[index].add(seconds: seconds)
            lastRequest = (key, index)
        }

        mutating func observeUpstream(_ name: String, seconds: Double) {
            if let last = lastUpstream, last.name == name {
                upstreamLatency.values[last.index].observe(seconds)
                return
            }
            if upstreamLatency[name] == nil { upstreamLatency[name] = Histogram() }
            let index = upstreamLatency.index(forKey: name)!
            upstreamLatency.values[index].observe(seconds)
            lastUpstream = (name, index)
        }
    }

    struct ShadowKey: Hashable {
        var route: String
        var reason: Reason
    }

    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.latencyBuckets.count)
        var sum = 0.0
        var count = 0
        func adding(_ other: Histogram) -> Histogram {
            var total = self
            for i in total.counts.indices { total.counts[i] += other.counts[i] }
            total.sum += other.sum
            total.count += other.count
            return total
        }

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
    /// Discovery documents refused (another `issuer`, malformed; SPEC §14.1).
    let discoveryRefusals = Atomic<Int>(0)
    /// Introspection calls answered by the provider, failed (no answer, bad answer), refused for
    /// the per-client limit (SPEC §14.3).
    let introspectionCalls = Atomic<Int>(0)
    let introspectionFailures = Atomic<Int>(0)
    let introspectionBusy = Atomic<Int>(0)
    let sessionStoreErrors = Atomic<Int>(0)
    /// WebSocket tunnels (SPEC §12): open now, and bytes relayed each way.
    let openTunnels = Atomic<Int>(0)
    let tunnelBytesToClient = Atomic<Int>(0)
    let tunnelBytesFromClient = Atomic<Int>(0)
    /// Unix time (ms) of the last successful configuration load: the start, then each reload.
    let lastReloadSuccessMs = Atomic<Int64>(0)

    init(workerCount: Int) {
        workers = (0..<workerCount).map { _ in Box() }
    }

    func record(worker: Int, _ log: AccessLogRecord) {
        workers[worker].state.withLock { m in
            let key = RequestKey(route: log.route ?? "", statusClass: log.status / 100, decision: log.decision)
            m.count(key, seconds: log.durationMs / 1000)
            // A shadow route's refusal was not carried out: counted in gatehouse_shadow_refusals_total.
            if log.decision == .deny, !log.shadow, let reason = log.reason { m.authFailures[reason, default: 0] += 1 }
            if log.reason == .sessionStoreDown { sessionStoreErrors.add(1, ordering: .relaxed) }
            if let ms = log.upstreamMs, let upstream = log.upstream {
                m.observeUpstream(upstream, seconds: ms / 1000)
            }
        }
    }

    /// A refusal that a route in shadow mode did not carry out (SPEC §15.2).
    func shadowRefused(worker: Int, route: String, reason: Reason) {
        workers[worker].state.withLock { $0.shadowRefusals[ShadowKey(route: route, reason: reason), default: 0] += 1 }
    }

    func connectionOpened(worker: Int) { workers[worker].state.withLock { $0.openConnections += 1 } }
    func connectionClosed(worker: Int) { workers[worker].state.withLock { $0.openConnections -= 1 } }

    /// The exposition text of every metric, summed over the workers.
    func render(droppedLogLines: Int) -> String {
        var requests: [RequestKey: Int] = [:]
        /// Request duration (the access log's `duration_ms`) by route ("" when none matched).
        var durations: [String: Histogram] = [:]
        var failures: [Reason: Int] = [:]
        var latency: [String: Histogram] = [:]
        var open = 0
        var shadow: [ShadowKey: Int] = [:]
        for w in workers {
            w.state.withLock { m in
                shadow.merge(m.shadowRefusals, uniquingKeysWith: +)
                for (key, stats) in m.requests {
                    requests[key, default: 0] += stats.count
                    durations[key.route] = durations[key.route].map { $0.adding(stats.duration) } ?? stats.duration
                }
                failures.merge(m.authFailures, uniquingKeysWith: +)
                latency.merge(m.upstreamLatency, uniquingKeysWith: { $0.adding($1) })
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
            histogram("gatehouse_upstream_latency_seconds", label: "upstream", name, h, to: &out)
        }
        out += "# HELP gatehouse_request_duration_seconds Time from the request's arrival to its access-log line, by route.\n# TYPE gatehouse_request_duration_seconds histogram\n"
        for (name, h) in durations.sorted(by: { $0.key < $1.key }) {
            histogram("gatehouse_request_duration_seconds", label: "route", name, h, to: &out)
        }
        out += "# HELP gatehouse_shadow_refusals_total Refusals a route in shadow mode logged but did not carry out, by route and reason.\n# TYPE gatehouse_shadow_refusals_total counter\n"
        for (key, n) in shadow.sorted(by: { ($0.key.route, $0.key.reason.rawValue) < ($1.key.route, $1.key.reason.rawValue) }) {
            out += "gatehouse_shadow_refusals_total{route=\"\(label(key.route))\",reason=\"\(key.reason.rawValue)\"} \(n)\n"
        }
        out += "# HELP gatehouse_open_connections Client connections open now.\n# TYPE gatehouse_open_connections gauge\ngatehouse_open_connections \(open)\n"
        out += "# HELP gatehouse_config_reloads_total Successful config reloads.\n# TYPE gatehouse_config_reloads_total counter\ngatehouse_config_reloads_total \(reloads.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_config_reload_failures_total Rejected config reloads.\n# TYPE gatehouse_config_reload_failures_total counter\ngatehouse_config_reload_failures_total \(reloadFailures.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_jwks_refreshes_total Successful JWKS fetches.\n# TYPE gatehouse_jwks_refreshes_total counter\ngatehouse_jwks_refreshes_total \(jwksRefreshes.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_jwks_refresh_failures_total Failed JWKS fetches.\n# TYPE gatehouse_jwks_refresh_failures_total counter\ngatehouse_jwks_refresh_failures_total \(jwksFailures.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_oidc_discovery_refused_total Discovery documents refused (issuer mismatch or malformed).\n# TYPE gatehouse_oidc_discovery_refused_total counter\ngatehouse_oidc_discovery_refused_total \(discoveryRefusals.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_introspection_calls_total Introspection calls the provider answered.\n# TYPE gatehouse_introspection_calls_total counter\ngatehouse_introspection_calls_total \(introspectionCalls.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_introspection_failures_total Introspection calls without a usable answer.\n# TYPE gatehouse_introspection_failures_total counter\ngatehouse_introspection_failures_total \(introspectionFailures.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_introspection_busy_total Opaque tokens refused because their client had 8 calls in flight.\n# TYPE gatehouse_introspection_busy_total counter\ngatehouse_introspection_busy_total \(introspectionBusy.load(ordering: .relaxed))\n"
        out += "# HELP gatehouse_session_store_errors_total Session store operations that failed (down, timeout).\n# TYPE gatehouse_session_store_errors_total counter\ngatehouse_session_store_errors_total \(sessionStoreErrors.load(ordering: .relaxed))\n"
        out += renderTunnels()
        let reloadedMs = lastReloadSuccessMs.load(ordering: .relaxed)
        out += "# HELP gatehouse_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load (start or reload).\n# TYPE gatehouse_config_last_reload_success_timestamp_seconds gauge\ngatehouse_config_last_reload_success_timestamp_seconds \(reloadedMs / 1000).\(String(reloadedMs % 1000).leftPadded(3))\n"
        out += "# HELP gatehouse_build_info The running build; always 1.\n# TYPE gatehouse_build_info gauge\ngatehouse_build_info{version=\"\(label(BuildInfo.version))\"} 1\n"
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

    /// The bucket, sum and count lines of one labelled histogram.
    private func histogram(_ metric: String, label key: String, _ value: String, _ h: Histogram, to out: inout String) {
        let labels = "\(key)=\"\(label(value))\""
        var cumulative = 0
        for (i, bound) in Metrics.latencyBuckets.enumerated() {
            cumulative += h.counts[i]
            out += "\(metric)_bucket{\(labels),le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "\(metric)_bucket{\(labels),le=\"+Inf\"} \(h.count)\n"
        out += "\(metric)_sum{\(labels)} \(h.sum)\n"
        out += "\(metric)_count{\(labels)} \(h.count)\n"
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

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
