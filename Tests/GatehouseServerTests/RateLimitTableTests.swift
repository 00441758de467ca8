import XCTest
import Glibc
import Synchronization
import GatehousePolicy
import GatehouseDecision
@testable import GatehouseServer

/// The memory store (SPEC §13): exact across threads, keys apart, expired keys reclaimed,
/// bounded with the least recently used dropped and counted. Times are given (a fake clock).
final class RateLimitTableTests: XCTestCase {
    private let limit = RateLimit(count: 1, unit: .second, burst: 3, key: .subject)

    private static func key(_ value: String, route: String = "api") -> UInt64 {
        RateLimitTable.hash(RateLimitKey(route: route, kind: .subject, scope: "local", value: value))
    }

    func testBurstThenRateForOneKey() {
        let table = RateLimitTable(maxKeys: 64)
        let k = Self.key("alice")
        XCTAssertEqual((0..<3).map { _ in table.admit(hash: k, now: 1_000, limit: limit) }, [.allowed, .allowed, .allowed])
        XCTAssertEqual(table.admit(hash: k, now: 1_000, limit: limit), .limited(retryAfterMicros: 1_000_000))
        XCTAssertEqual(table.admit(hash: k, now: 1_001_000, limit: limit), .allowed)
        XCTAssertEqual(table.admit(hash: k, now: 1_001_000, limit: limit), .limited(retryAfterMicros: 1_000_000))
    }

    func testKeysAndRoutesAreApart() {
        let table = RateLimitTable(maxKeys: 64)
        for k in [Self.key("alice"), Self.key("bob"), Self.key("alice", route: "other")] {
            for _ in 0..<3 { XCTAssertEqual(table.admit(hash: k, now: 0, limit: limit), .allowed) }
            XCTAssertNotEqual(table.admit(hash: k, now: 0, limit: limit), .allowed)
        }
        let anon = RateLimitTable.hash(RateLimitKey(route: "api", kind: .client, value: "alice"))
        XCTAssertNotEqual(anon, Self.key("alice"), "a subject and an address that read the same are different keys")
    }

    /// Four threads, one key, one instant: exactly the burst is admitted.
    func testExactAcrossThreads() {
        let table = RateLimitTable(maxKeys: 1024)
        let big = RateLimit(count: 1, unit: .hour, burst: 1000, key: .subject)
        let k = Self.key("shared")
        let admitted = Mutex([Int](repeating: 0, count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            var n = 0
            for i in 0..<5000 {
                // Other keys in between, so that the stripes are busy too.
                _ = table.admit(hash: Self.key("noise-\(worker)-\(i % 50)"), now: 5, limit: big)
                if table.admit(hash: k, now: 5, limit: big) == .allowed { n += 1 }
            }
            admitted.withLock { $0[worker] = n }
        }
        XCTAssertEqual(admitted.withLock { $0.reduce(0, +) }, 1000)
    }

    func testExpiredKeysAreReclaimedWithoutCountingADrop() {
        let table = RateLimitTable(maxKeys: 8)  // one set of 8 ways
        XCTAssertEqual(table.capacity, 8)
        for i in 0..<8 { XCTAssertEqual(table.admit(hash: Self.key("k\(i)"), now: 0, limit: limit), .allowed) }
        XCTAssertEqual(table.liveKeys(now: 0), 8)
        // A second later every bucket is full again: their slots are free.
        for i in 8..<16 { XCTAssertEqual(table.admit(hash: Self.key("k\(i)"), now: 2_000_000, limit: limit), .allowed) }
        XCTAssertEqual(table.dropped.load(ordering: .relaxed), 0)
        XCTAssertEqual(table.liveKeys(now: 2_000_000), 8)
    }

    func testBoundedTheLeastRecentlyUsedIsDroppedAndCounted() {
        let table = RateLimitTable(maxKeys: 8)
        let slow = RateLimit(count: 1, unit: .hour, burst: 2, key: .subject)
        for i in 0..<8 { XCTAssertEqual(table.admit(hash: Self.key("k\(i)"), now: Int64(i), limit: slow), .allowed) }
        // k0 used again last: k1 is now the least recently used.
        XCTAssertEqual(table.admit(hash: Self.key("k0"), now: 100, limit: slow), .allowed)
        XCTAssertEqual(table.admit(hash: Self.key("new"), now: 101, limit: slow), .allowed)
        XCTAssertEqual(table.dropped.load(ordering: .relaxed), 1)
        XCTAssertEqual(table.liveKeys(now: 101), 8, "never more than the capacity")
        XCTAssertNotEqual(table.admit(hash: Self.key("k0"), now: 102, limit: slow), .allowed, "k0 kept its bucket")
        XCTAssertEqual(table.admit(hash: Self.key("k1"), now: 103, limit: slow), .allowed, "k1 was dropped: a fresh bucket")
    }

    func testManyKeysStayWithinTheBound() {
        let table = RateLimitTable(maxKeys: 1000)
        let slow = RateLimit(count: 1, unit: .hour, burst: 1, key: .client)
        for i in 0..<20_000 { _ = table.admit(hash: Self.key("client-\(i)"), now: Int64(i), limit: slow) }
        XCTAssertLessThanOrEqual(table.liveKeys(now: 20_000), table.capacity)
        XCTAssertGreaterThan(table.dropped.load(ordering: .relaxed), 20_000 - table.capacity - 1)
    }

    func testRedisKeysHideTheValueAndStayPerRoute() {
        let a = RedisRateLimiter.redisKey(RateLimitKey(route: "api", kind: .subject, scope: "local", value: "alice"))
        XCTAssertTrue(a.hasPrefix("gatehouse:ratelimit:api:"), a)
        XCTAssertFalse(a.contains("alice"))
        XCTAssertNotEqual(a, RedisRateLimiter.redisKey(RateLimitKey(route: "api2", kind: .subject, scope: "local", value: "alice")))
        XCTAssertEqual(a, RedisRateLimiter.redisKey(RateLimitKey(route: "api", kind: .subject, scope: "local", value: "alice")),
                       "stable across instances")
    }
}
