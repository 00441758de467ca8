import Foundation
import GatehouseServer
import GatehouseSessions
import XCTest

/// Login failure counts in Redis (SPEC §3.2 Login admission): the same rules as LoginThrottle,
/// shared by every instance, against a real redis-server.
final class RedisLoginFailureTests: RedisStoreTestCase {
    private let key = LoginThrottle.sharedKey(username: "alice", client: "192.0.2.7")

    private func reserve(_ store: RedisSessionStore, _ key: String? = nil, max: Int = 5, window: Int64 = 900,
                         file: StaticString = #filePath, line: UInt = #line) -> LoginThrottle.Verdict? {
        value(file: file, line: line) { store.reserveLogin(key: key ?? self.key, maxFailures: max, window: window, completion: $0) }
    }

    private func settle(_ store: RedisSessionStore, _ outcome: LoginThrottle.Outcome, _ key: String? = nil, max: Int = 5,
                        window: Int64 = 900, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotNil(value(file: file, line: line) {
            store.settleLogin(key: key ?? self.key, outcome: outcome, maxFailures: max, window: window, completion: $0)
        }, file: file, line: line)
    }

    private func fail(_ store: RedisSessionStore, max: Int = 5, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reserve(store, max: max, file: file, line: line), .allowed, file: file, line: line)
        settle(store, .failed, max: max, file: file, line: line)
    }

    func testFailuresSpreadOverTwoInstancesLockBoth() {
        let first = makeStore(base: 0), second = makeStore(base: 1)
        for index in 0..<5 { fail(index.isMultiple(of: 2) ? first : second) }
        for store in [first, second] {
            guard case .refused(let seconds)? = reserve(store) else { return XCTFail("not locked") }
            XCTAssertGreaterThan(seconds, 890)
            XCTAssertLessThanOrEqual(seconds, 900)
        }
        let other = LoginThrottle.sharedKey(username: "bob", client: "192.0.2.7")
        XCTAssertEqual(reserve(second, other), .allowed, "another username from the same client")
    }

    func testPendingAttemptsCountSoParallelGuessesNeverExceedTheLimit() {
        let first = makeStore(base: 0), second = makeStore(base: 1)
        let verdicts = (0..<10).map { reserve($0.isMultiple(of: 2) ? first : second, max: 3) }
        XCTAssertEqual(verdicts.filter { $0 == .allowed }.count, 3)
        XCTAssertEqual(verdicts.last, .refused(retryAfter: 1), "only pending checks stand in the way")
        for _ in 0..<3 { settle(second, .failed, max: 3) }
        guard case .refused(let seconds)? = reserve(first, max: 3) else { return XCTFail("not locked") }
        XCTAssertGreaterThan(seconds, 1)
    }

    func testSuccessClearsAndAbandonedDoesNotCount() {
        let store = makeStore()
        for _ in 0..<4 { fail(store) }
        XCTAssertEqual(reserve(store), .allowed)
        settle(store, .succeeded)
        XCTAssertEqual(server.raw("EXISTS", RedisSessionStore.loginKeyPrefix + key), ["0"])
        for _ in 0..<10 {
            XCTAssertEqual(reserve(store), .allowed)
            settle(store, .abandoned)
        }
        XCTAssertEqual(server.raw("EXISTS", RedisSessionStore.loginKeyPrefix + key), ["0"], "nothing left behind")
    }

    func testTheWindowStartsAtTheFirstAttemptAndTheLockLastsAWindow() {
        let store = makeStore()
        let redisKey = RedisSessionStore.loginKeyPrefix + key
        fail(store, max: 2)
        let firstTTL = ttl(redisKey) ?? -9
        XCTAssertGreaterThan(firstTTL, 890)
        XCTAssertLessThanOrEqual(firstTTL, 900)
        _ = server.raw("EXPIRE", redisKey, "100")   // as if 800 s had passed
        fail(store, max: 2)                       // the limit: locked for a whole window from now
        XCTAssertGreaterThan(ttl(redisKey) ?? -9, 890)
    }

    func testAFailureSettledAfterItsKeyExpiredStartsANewWindow() {
        let store = makeStore()
        let redisKey = RedisSessionStore.loginKeyPrefix + key
        XCTAssertEqual(reserve(store), .allowed)
        _ = server.raw("DEL", redisKey)
        settle(store, .failed)
        XCTAssertEqual(server.raw("HGET", redisKey, "f"), ["1"])
        XCTAssertEqual(server.raw("HGET", redisKey, "p"), [], "no negative pending count")
        XCTAssertGreaterThan(ttl(redisKey) ?? -9, 0, "never a key without expiry")
    }

    func testNoUsernameOrAddressReachesRedis() {
        let store = makeStore()
        let hostile = ["alice", "", "a\r\nSET x y", String(repeating: "é", count: 5000), "*", "gatehouse:session:x"]
        for user in hostile {
            let key = LoginThrottle.sharedKey(username: user, client: "2001:db8:1:2::/64")
            XCTAssertEqual(reserve(store, key), .allowed)
            settle(store, .failed, key)
        }
        let keys = server.raw("KEYS", "*").filter { !$0.isEmpty }
        XCTAssertEqual(keys.count, hostile.count)
        for key in keys {
            XCTAssertTrue(key.hasPrefix(RedisSessionStore.loginKeyPrefix), key)
            XCTAssertEqual(key.utf8.count, RedisSessionStore.loginKeyPrefix.utf8.count + 64, key)
            XCTAssertFalse(key.contains("2001"), key)
        }
    }

    func testRedisDownFailsAtOnceSoTheCallerCanFallBack() {
        let store = makeStore()
        server.stop()
        let outcome = wait(timeout: 3) { store.reserveLogin(key: key, maxFailures: 5, window: 900, completion: $0) }
        XCTAssertNotNil(outcome?.failure)
        let settled = wait(timeout: 3) { store.settleLogin(key: key, outcome: .failed, maxFailures: 5, window: 900, completion: $0) }
        XCTAssertNotNil(settled?.failure)
    }
}
