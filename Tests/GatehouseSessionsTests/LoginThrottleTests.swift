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

    func testAttemptsInFlightAreBoundedAtTwiceTheLimitSoParallelGuessesStayBounded() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 3, window: 60, clock: clock.function)
        let verdicts = (0..<10).map { _ in throttle.admit(username: "alice", client: "c") }
        XCTAssertEqual(verdicts.filter { $0 == .allowed }.count, 6)
        XCTAssertEqual(verdicts.last, .refused(retryAfter: 1))
        for _ in 0..<6 { throttle.finish(username: "alice", client: "c", outcome: .failed) }
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .refused(retryAfter: 60))
    }

    func testSimultaneousCorrectLoginsAreNotRefused() {
        let clock = ManualClock()
        let throttle = LoginThrottle(maxFailures: 5, window: 60, clock: clock.function)
        let verdicts = (0..<8).map { _ in throttle.admit(username: "alice", client: "c") }
        XCTAssertTrue(verdicts.allSatisfy { $0 == .allowed })
        for _ in 0..<8 { throttle.finish(username: "alice", client: "c", outcome: .succeeded) }
        XCTAssertEqual(throttle.admit(username: "alice", client: "c"), .allowed)
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
        let throttle = LoginThrottle(maxFailures: 1, window: 60, clock: clock.function)
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
