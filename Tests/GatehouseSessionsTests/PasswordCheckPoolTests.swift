import Foundation
import Synchronization
import XCTest
@testable import GatehouseSessions

final class PasswordCheckPoolTests: XCTestCase {
    private func verifier() throws -> PasswordVerifier {
        let users = try PasswordFixtures.users()
        return PasswordVerifier(users: users, dummyHash: users["alice"]!)
    }

    func testCompletionRunsOnAPoolThreadNotTheCaller() throws {
        let pool = PasswordCheckPool(threads: 2)
        defer { pool.shutdown() }
        let caller = pthread_self()
        let done = expectation(description: "completion")
        let onCaller = Mutex<Bool?>(nil)
        let admission = pool.submit(user: "alice", password: Array("correct horse battery staple".utf8),
                                    verifier: try verifier()) { ok in
            XCTAssertTrue(ok)
            onCaller.withLock { $0 = pthread_equal(pthread_self(), caller) != 0 }
            done.fulfill()
        }
        XCTAssertEqual(admission, .queued)
        wait(for: [done], timeout: 10)
        XCTAssertEqual(onCaller.withLock { $0 }, false)
    }

    func testResultsAreTrueForTheRightPasswordAndFalseOtherwise() throws {
        let pool = PasswordCheckPool(threads: 2)
        defer { pool.shutdown() }
        let verifier = try verifier()
        let table: [(description: String, user: String, password: String, expect: Bool)] = [
            ("right password", "alice", "correct horse battery staple", true),
            ("wrong password", "alice", "correct horse", false),
            ("unknown user", "mallory", "correct horse battery staple", false),
            ("SHA-512 crypt user", "erin", "sha512 default rounds", true),
        ]
        for row in table {
            let done = expectation(description: row.description)
            let result = Mutex<Bool?>(nil)
            pool.submit(user: row.user, password: Array(row.password.utf8), verifier: verifier) { ok in
                result.withLock { $0 = ok }
                done.fulfill()
            }
            wait(for: [done], timeout: 10)
            XCTAssertEqual(result.withLock { $0 }, row.expect, row.description)
        }
    }

    func testAFullQueueRefusesAtOnceAndNeverCallsThatCompletion() {
        let pool = PasswordCheckPool(threads: 1, queueCapacity: 2)
        defer { pool.shutdown() }
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let completed = Mutex<[Int]>([])
        let allDone = expectation(description: "queued checks complete")
        allDone.expectedFulfillmentCount = 3
        func record(_ tag: Int) -> @Sendable (Bool) -> Void {
            { _ in
                completed.withLock { $0.append(tag) }
                allDone.fulfill()
            }
        }
        // Job 1 holds the only worker until released.
        XCTAssertEqual(pool.submit(work: { started.signal(); release.wait(); return true }, completion: record(1)), .queued)
        started.wait()
        XCTAssertEqual(pool.submit(work: { false }, completion: record(2)), .queued)
        XCTAssertEqual(pool.submit(work: { false }, completion: record(3)), .queued)
        XCTAssertEqual(pool.waitingCount, 2)
        XCTAssertEqual(pool.submit(work: { false }, completion: record(4)), .busy)
        release.signal()
        wait(for: [allDone], timeout: 10)
        XCTAssertEqual(completed.withLock { $0 }, [1, 2, 3], "in order, and the refused one never completes")
        XCTAssertEqual(pool.waitingCount, 0)
    }

    func testShutdownFinishesQueuedChecksThenRefusesNewOnes() {
        let pool = PasswordCheckPool(threads: 1, queueCapacity: 8)
        let count = Atomic<Int>(0)
        for _ in 0..<5 {
            pool.submit(work: { usleep(2000); return true }, completion: { _ in count.add(1, ordering: .relaxed) })
        }
        pool.shutdown()
        XCTAssertEqual(count.load(ordering: .relaxed), 5)
        XCTAssertEqual(pool.submit(work: { true }, completion: { _ in XCTFail("must not run") }), .busy)
        pool.shutdown()  // a second call is harmless
    }

    func testSeveralThreadsCheckInParallel() {
        let pool = PasswordCheckPool(threads: 2)
        defer { pool.shutdown() }
        let bothRunning = DispatchSemaphore(value: 0)
        let running = Atomic<Int>(0)
        let done = expectation(description: "both")
        done.expectedFulfillmentCount = 2
        for _ in 0..<2 {
            pool.submit(work: {
                // The second job to start wakes both; with one thread the first would time out.
                if running.add(1, ordering: .relaxed).newValue == 2 {
                    bothRunning.signal()
                    bothRunning.signal()
                }
                return bothRunning.wait(timeout: .now() + 5) == .success
            }, completion: { ok in
                XCTAssertTrue(ok)
                done.fulfill()
            })
        }
        wait(for: [done], timeout: 10)
    }
}
