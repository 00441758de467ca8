import XCTest
import GatehouseCore
@testable import GatehouseServer

/// Per-worker request counting remembers where the last request was counted; whatever order
/// keys come in (repeats, alternation, hundreds of new keys growing the tables), the counts
/// and histograms must be those of a plain count.
final class MetricsCountTests: XCTestCase {
    func testCountsMatchAPlainCountInEveryOrder() {
        var generator = SystemRandomNumberGenerator()
        let routes = ["api", "admin", "a-route-name-longer-than-fifteen-bytes", ""] + (0..<300).map { "r\($0)" }
        let upstreams = ["backend", "other-upstream-with-a-long-name"] + (0..<50).map { "u\($0)" }
        var metrics = Metrics.WorkerMetrics()
        var expected: [Metrics.RequestKey: Int] = [:]
        var expectedUpstream: [String: Int] = [:]
        var sequence: [(Metrics.RequestKey, String)] = []
        for i in 0..<4000 {
            // Runs of the same key, alternation, and every so often a key not seen before.
            let route = i % 7 == 0 ? routes[Int.random(in: 0..<routes.count, using: &generator)] : routes[i / 50 % 4]
            let key = Metrics.RequestKey(route: route, statusClass: [2, 4, 5][i % 3 == 0 ? i % 9 / 3 : 0],
                                         decision: i % 11 == 0 ? .deny : .allow)
            sequence.append((key, upstreams[i % 13 == 0 ? Int.random(in: 0..<upstreams.count, using: &generator) : i / 100 % 2]))
        }
        for (key, upstream) in sequence {
            metrics.count(key, seconds: 0.002)
            metrics.observeUpstream(upstream, seconds: 0.001)
            expected[key, default: 0] += 1
            expectedUpstream[upstream, default: 0] += 1
        }
        XCTAssertEqual(metrics.requests.mapValues(\.count), expected)
        XCTAssertEqual(metrics.upstreamLatency.mapValues(\.count), expectedUpstream)
        for stats in metrics.requests.values {
            XCTAssertEqual(stats.duration.count, stats.count)
            XCTAssertEqual(stats.duration.counts.reduce(0, +), stats.count)
        }
    }

    /// Through `record` and `render`, as `/metrics` shows them.
    func testRecordedRequestsAppearOnceEach() {
        let metrics = Metrics(workerCount: 1)
        for (route, status) in [("api", 200), ("api", 200), ("admin", 403), ("api", 200), ("admin", 403), ("api", 502)] {
            var log = AccessLogRecord()
            log.route = route
            log.status = status
            log.decision = status == 403 ? .deny : .allow
            log.upstream = status == 403 ? nil : "backend"
            log.upstreamMs = status == 403 ? nil : 1.5
            metrics.record(worker: 0, log)
        }
        let text = metrics.render(droppedLogLines: 0)
        XCTAssertTrue(text.contains(#"gatehouse_requests_total{route="api",status_class="2xx",decision="allow"} 3"#), text)
        XCTAssertTrue(text.contains(#"gatehouse_requests_total{route="api",status_class="5xx",decision="allow"} 1"#), text)
        XCTAssertTrue(text.contains(#"gatehouse_requests_total{route="admin",status_class="4xx",decision="deny"} 2"#), text)
        XCTAssertTrue(text.contains(#"gatehouse_upstream_latency_seconds_count{upstream="backend"} 4"#), text)
    }
}
