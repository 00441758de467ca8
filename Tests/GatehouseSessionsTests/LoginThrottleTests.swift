import XCTest
@testable import GatehouseSessions

final class LoginThrottleTests: XCTestCase {
    private func fail(_ throttle: LoginThrottle, _ user: String = "alice", _ client: String = "10.0.0.1",
                      file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(throttle.admit(username: user, client: client), .allowed, file: file, line: line)
        throttle.finish(username: user, client: client, outcome: .failed)
    }

    func testFiveFailuresLockTheKeyForTheWindowWithRetryAfter() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 5, window: 900, clock: clock.function)
        for _ in 0..<4 {
            fail(throttle)
            clock.advance(10)
        }
        fail(throttle)  // the fifth, at t+40
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .refused(retryAfter: 900))
        clock.advance(899)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .refused(retryAfter: 1))
        clock.advance(1)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed, "the window has passed")
    }

    func testTheLockIsPerUsernameAndClient() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 2, window: 60, clock: clock.function)
        fail(throttle)
        fail(throttle)
        let table: [(user: String, client: String, expect: LoginThrottle.Verdict)] = [
            ("alice", "10.0.0.1", .refused(retryAfter: 60)),
            ("alice", "10.0.0.2", .allowed),
            ("bob", "10.0.0.1", .allowed),
            ("Alice", "10.0.0.1", .allowed),
        ]
        for row in table {
            XCTAssertEqual(throttle.admit(username: row.user, client: row.client), row.expect, "\(row.user) from \(row.client)")
        }
    }

    func testFailuresOutsideTheWindowDoNotCount() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 3, window: 60, clock: clock.function)
        fail(throttle)
        fail(throttle)
        clock.advance(60)
        fail(throttle)
        fail(throttle)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed)
    }

    func testSuccessResetsTheCount() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 3, window: 60, clock: clock.function)
        fail(throttle)
        fail(throttle)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed)
        throttle.finish(username: "alice", client: "10.0.0.1", outcome: .succeeded)
        XCTAssertEqual(throttle.count, 0)
        fail(throttle)
        fail(throttle)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed)
    }

    func testAttemptsInFlightCountSoParallelGuessesNeverExceedTheLimit() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 3, window: 60, clock: clock.function)
        let verdicts = (0..<10).map { _ in throttle.admit(username: "alice", client: "c") }
        XCTAssertEqual(verdicts.filter { $0 == .allowed }.count, 3, "at most max_failures passwords tried")
        XCTAssertEqual(verdicts.last, .refused(retryAfter: 1), "refused only for now: the checks may succeed")
        for _ in 0..<3 { throttle.finish(username: "alice", client: "c", outcome: .failed) }
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .refused(retryAfter: 60))
    }

    func testFailuresAndAttemptsInFlightTogetherStayWithinTheLimit() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 5, window: 60, clock: clock.function)
        for _ in 0..<4 { fail(throttle) }
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .refused(retryAfter: 1))
        throttle.finish(username: "alice", client: "10.0.0.1", outcome: .succeeded)
        XCTAssertEqual(throttle.admit(username: "alice", client: "10.0.0.1"), .allowed, "a success clears the key")
    }

    func testTwoSimultaneousCorrectLoginsAreNotRefused() {
        // The per-client admission lets 2 checks of one client run at once (LoginAdmission).
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 5, window: 60, clock: clock.function)
        let verdicts = (0..<2).map { _ in throttle.admit(username: "alice", client: "c") }
        XCTAssertTrue(verdicts.allSatisfy { $0 == .allowed })
        for _ in 0..<2 { throttle.finish(username: "alice", client: "c", outcome: .succeeded) }
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)
    }

    func testManyUsernamesFromOneClientAreEachCountedAndBounded() {
        // Varying the username is not a way around a lock, and costs bounded memory.
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 2, window: 60, capacity: 500, clock: clock.function)
        let hostile = ["", " ", "alice ", "ALICE", "al\u{0301}ice", String(repeating: "a", count: 4096), "a\u{0}b",
                       "2001:db8::/64", "%00", "\u{202E}ecila"]
        for user in hostile {
            fail(throttle, user, "2001:db8::/64")
            fail(throttle, user, "2001:db8::/64")
            XCTAssertEqual(throttle.admit(username: user, client: "2001:db8::/64"), .refused(retryAfter: 60),
                           String(user.prefix(20)))
        }
        for index in 0..<5000 { fail(throttle, "user\(index)", "2001:db8::/64") }
        XCTAssertLessThanOrEqual(throttle.count, 500)
    }

    func testSharedKeysAreFixedLengthHashesThatNeverCollideAcrossTheSeparator() {
        let table: [(user: String, client: String)] = [
            ("alice", "10.0.0.1"), ("alice", "10.0.0.2"), ("Alice", "10.0.0.1"), ("alice\u{0}1", "0.0.0.1"),
            ("", ""), (String(repeating: "x", count: 10_000), "2001:db8::/64"), ("ä", "::/64"),
        ]
        var seen: Set<String> = []
        for row in table {
            let key = LoginThrottle.sharedKey(username: row.user, client: row.client)
            XCTAssertEqual(key.utf8.count, 64)
            XCTAssertTrue(key.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, key)
            XCTAssertFalse(key.contains(row.user) && !row.user.isEmpty && row.user.count > 3)
            seen.insert(key)
        }
        XCTAssertEqual(LoginThrottle.sharedKey(username: "alice", client: "10.0.0.1"),
                       LoginThrottle.sharedKey(username: "alice", client: "10.0.0.1"))
        XCTAssertEqual(seen.count, table.count)
    }

    func testAbandonedAttemptsDoNotCount() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 2, window: 60, clock: clock.function)
        for _ in 0..<5 {
            XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)
            throttle.finish(username: "alice", client: "c", outcome: .abandoned)
        }
        XCTAssertEqual(throttle.count, 0)
    }

    func testALostFinishDoesNotLockForever() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 2, window: 60, clock: clock.function)
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)  // never finished
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)  // never finished
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .refused(retryAfter: 1))
        clock.advance(60)
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)
    }

    func testMemoryIsBoundedAndLockedKeysAreDroppedLast() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 2, window: 60, capacity: 100, clock: clock.function)
        fail(throttle, "locked")
        fail(throttle, "locked")
        for index in 0..<50 { fail(throttle, "early\(index)") }
        clock.advance(30)
        for index in 0..<1000 { fail(throttle, "user\(index)") }
        XCTAssertLessThanOrEqual(throttle.count, 100)
        XCTAssertEqual(throttle.admit(username: "locked", client: "10.0.0.1"), .refused(retryAfter: 30),
                       "locked keys are dropped last")
    }
}
