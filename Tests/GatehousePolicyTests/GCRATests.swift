import XCTest
@testable import GatehousePolicy

/// The GCRA of SPEC §13 against a hand-computed reference table (a fake clock: times are
/// given), and against an independent token-bucket model over random arrivals.
final class GCRATests: XCTestCase {
    private let s: Int64 = 1_000_000

    /// 2/s, burst 3: interval 0.5 s, tolerance 1.5 s. Each row: arrival (µs), admitted,
    /// retry-after (µs) when refused.
    func testReferenceTable() {
        let limit = RateLimit(count: 2, unit: .second, burst: 3, key: .subject)
        XCTAssertEqual(limit.intervalMicros, s / 2)
        XCTAssertEqual(limit.toleranceMicros, 3 * s / 2)
        let rows: [(at: Int64, allowed: Bool, retry: Int64)] = [
            (0, true, 0), (0, true, 0), (0, true, 0),        // the burst at once
            (0, false, s / 2),                                // the 4th waits one interval
            (4 * s / 10, false, s / 10),                      // 0.1 s to go
            (s / 2, true, 0),                                 // one token back
            (s / 2, false, s / 2),
            (2 * s, true, 0), (2 * s, true, 0), (2 * s, true, 0),  // 1.5 s later: the burst again
            (2 * s, false, s / 2),
            (10 * s, true, 0),                                // long idle: full, not more
            (10 * s, true, 0), (10 * s, true, 0), (10 * s, false, s / 2),
        ]
        var tat: Int64 = 0
        for (i, row) in rows.enumerated() {
            switch GCRA.admit(tat: tat, now: row.at, interval: limit.intervalMicros, tolerance: limit.toleranceMicros) {
            case .allowed(let next):
                XCTAssertTrue(row.allowed, "row \(i)")
                tat = next
            case .limited(let retry):
                XCTAssertFalse(row.allowed, "row \(i)")
                XCTAssertEqual(retry, row.retry, "row \(i)")
            }
        }
    }

    /// The same answers as a bucket of credit (µs) filled with elapsed time up to
    /// `burst × interval`, each request taking one interval.
    func testAgreesWithATokenBucketOverRandomArrivals() {
        var generator = SystemRandomNumberGenerator()
        for (count, unit, burst) in [(1, RateLimit.Unit.second, 1), (7, .second, 5), (100, .minute, 20), (3, .hour, 2)] {
            let limit = RateLimit(count: count, unit: unit, burst: burst, key: .client)
            var tat: Int64 = 0
            var credit = limit.toleranceMicros
            var now: Int64 = 1_000_000_000
            var last = now
            for _ in 0..<5000 {
                now += Int64.random(in: 0...(limit.intervalMicros * 2), using: &generator)
                credit = min(limit.toleranceMicros, credit + (now - last))
                last = now
                let model = credit >= limit.intervalMicros
                if model { credit -= limit.intervalMicros }
                switch GCRA.admit(tat: tat, now: now, interval: limit.intervalMicros, tolerance: limit.toleranceMicros) {
                case .allowed(let next):
                    XCTAssertTrue(model, "\(limit.description) at \(now)")
                    tat = next
                case .limited(let retry):
                    XCTAssertFalse(model, "\(limit.description) at \(now)")
                    XCTAssertEqual(retry, limit.intervalMicros - credit, "retry = the credit still missing")
                }
            }
        }
    }

    func testRetryAfterIsWholeSecondsRoundedUpAndAtLeastOne() {
        let table: [(Int64, Int64)] = [(0, 1), (1, 1), (999_999, 1), (1_000_000, 1), (1_000_001, 2), (59_500_000, 60),
                                       (-5, 1)]
        for (micros, seconds) in table { XCTAssertEqual(GCRA.retryAfterSeconds(micros), seconds, "\(micros)") }
    }

    func testIntervalsPerUnitAndTheExtremesStayExact() {
        XCTAssertEqual(RateLimit(count: 20, unit: .second, burst: 40, key: .subject).intervalMicros, 50_000)
        XCTAssertEqual(RateLimit(count: 100, unit: .minute, burst: 1, key: .subject).intervalMicros, 600_000)
        XCTAssertEqual(RateLimit(count: 1, unit: .hour, burst: 1, key: .subject).intervalMicros, 3_600_000_000)
        let fastest = RateLimit(count: RateLimit.maxCount, unit: .second, burst: RateLimit.maxBurst, key: .subject)
        XCTAssertEqual(fastest.intervalMicros, 1)
        let slowest = RateLimit(count: 1, unit: .hour, burst: RateLimit.maxBurst, key: .subject)
        XCTAssertLessThan(slowest.toleranceMicros, 1 << 53, "Lua's doubles hold it exactly")
        // A far-future TAT does not overflow.
        XCTAssertEqual(GCRA.admit(tat: 1 << 60, now: 0, interval: slowest.intervalMicros, tolerance: slowest.toleranceMicros),
                       .limited(retryAfterMicros: (1 << 60) + slowest.intervalMicros - slowest.toleranceMicros))
    }
}
