import Foundation
import GatehouseConfig
import GatehouseDecision
import GatehousePolicy
import XCTest
@testable import GatehouseServer

/// The Redis store of rate limits (SPEC §13) against a real `redis-server`: the script's GCRA,
/// one bucket shared by two connections, the script loaded again after `SCRIPT FLUSH`, and
/// every failure answered `storeFailed` (the request passes).
final class RedisRateLimiterTests: RedisStoreTestCase {
    private var limiters: [RedisRateLimiter] = []

    override func tearDown() {
        for limiter in limiters { limiter.connection.close() }
        limiters = []
        super.tearDown()
    }

    private func makeLimiter(base: Int = 0, commandTimeoutMs: Int64 = 500) -> RedisRateLimiter {
        let limiter = RedisRateLimiter(base: driver.bases[base], address: "127.0.0.1",
                                       setting: .redis(host: "127.0.0.1", port: server.port, db: 0, password: nil),
                                       commandTimeoutMs: commandTimeoutMs)
        limiters.append(limiter)
        return limiter
    }

    private func admit(_ limiter: RedisRateLimiter, _ key: RateLimitKey, _ limit: RateLimit,
                       file: StaticString = #filePath, line: UInt = #line) -> RateLimitAnswer? {
        var answer: RateLimitAnswer?
        var calls = 0
        limiter.admit(key, limit: limit) { calls += 1; answer = $0 }
        driver.run(until: { answer != nil }, timeout: 5)
        XCTAssertEqual(calls, 1, "exactly one completion", file: file, line: line)
        return answer
    }

    private let hourly = RateLimit(count: 1, unit: .hour, burst: 3, key: .subject)
    private func key(_ subject: String) -> RateLimitKey { RateLimitKey(route: "api", kind: .subject, scope: "local", value: subject) }

    func testBurstThenLimitedWithTheIntervalToWait() {
        let limiter = makeLimiter()
        XCTAssertEqual((0..<3).map { _ in admit(limiter, key("alice"), hourly) }, [.allowed, .allowed, .allowed])
        guard case .limited(let retry)? = admit(limiter, key("alice"), hourly) else { return XCTFail("not limited") }
        XCTAssertGreaterThan(retry, 3_590_000_000)
        XCTAssertLessThanOrEqual(retry, 3_600_000_000)
        XCTAssertEqual(admit(limiter, key("bob"), hourly), .allowed, "another subject, another bucket")
        XCTAssertNotNil(limiter.digest, "the script was loaded (EVALSHA from then on)")
        // The key expires when the bucket is full again: at most burst × interval.
        let redisKey = RedisRateLimiter.redisKey(key("alice"))
        let ttl = Int64(server.raw("PTTL", redisKey).first ?? "") ?? -1
        XCTAssertGreaterThan(ttl, 0)
        XCTAssertLessThanOrEqual(ttl, hourly.toleranceMicros / 1000 + 1)
    }

    func testTwoConnectionsShareOneBucketExactly() {
        let a = makeLimiter(base: 0), b = makeLimiter(base: 1)
        var allowed = 0
        for i in 0..<10 where admit(i % 2 == 0 ? a : b, key("shared"), hourly) == .allowed { allowed += 1 }
        XCTAssertEqual(allowed, 3)
    }

    func testTheScriptIsLoadedAgainAfterAFlush() {
        let limiter = makeLimiter()
        XCTAssertEqual(admit(limiter, key("carol"), hourly), .allowed)
        XCTAssertTrue(driver.run(until: { limiter.digest != nil }, timeout: 3))
        XCTAssertEqual(server.cli("SCRIPT", "FLUSH"), ["OK"])
        XCTAssertEqual(admit(limiter, key("carol"), hourly), .allowed, "NOSCRIPT: sent again with EVAL")
        XCTAssertEqual(admit(limiter, key("carol"), hourly), .allowed)
        XCTAssertNotEqual(admit(limiter, key("carol"), hourly), .allowed, "the bucket survived the flush")
    }

    func testAnErrorReplyADownServerAndAFrozenOneAllLetThrough() {
        let limiter = makeLimiter(commandTimeoutMs: 200)
        let wrongType = RedisRateLimiter.redisKey(key("dave"))
        _ = server.cli("HSET", wrongType, "f", "v")
        XCTAssertEqual(admit(limiter, key("dave"), hourly), .storeFailed, "WRONGTYPE")
        server.pause()
        XCTAssertEqual(admit(limiter, key("erin"), hourly), .storeFailed, "a timeout")
        server.resume()
        server.stop()
        XCTAssertEqual(admit(limiter, key("erin"), hourly), .storeFailed, "down")
    }
}
