import XCTest
@testable import GatehouseServer

/// When an accepting loop pauses and resumes (SPEC §3.2 Connections), on a fake clock.
final class AcceptGateTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    private func isPause(_ action: AcceptGate.Action, retry: Int64?, logged: Bool) -> Bool {
        guard case let .pause(retryAfterMs, log) = action else { return false }
        return retryAfterMs == retry && (log != nil) == logged
    }

    func testTheLimitPausesUntilAConnectionCloses() {
        var gate = AcceptGate(limit: 3)
        XCTAssertEqual(gate.accepted(nowNs: 1), .keepAccepting)
        XCTAssertEqual(gate.accepted(nowNs: 2), .keepAccepting)
        XCTAssertTrue(isPause(gate.accepted(nowNs: 3), retry: nil, logged: true))
        XCTAssertEqual(gate.paused, .limit)
        XCTAssertEqual(gate.retryDue(), .stayPaused, "no timer resumes a full loop")
        XCTAssertEqual(gate.closed(), .resume)
        XCTAssertNil(gate.paused)
        XCTAssertEqual(gate.open, 2)
    }

    func testAFailedAcceptPausesAndRetriesLater() {
        var gate = AcceptGate(limit: 100)
        let action = gate.acceptFailed("Too many open files", nowNs: 1)
        XCTAssertTrue(isPause(action, retry: AcceptGate.retryMs, logged: true))
        guard case let .pause(_, log) = action else { return XCTFail() }
        XCTAssertTrue(log!.contains("Too many open files"))
        XCTAssertEqual(gate.acceptFailed("Too many open files", nowNs: 2), .stayPaused)
        XCTAssertEqual(gate.retryDue(), .resume)
        XCTAssertNil(gate.paused)
    }

    func testAClosedConnectionEndsAnAcceptFailurePauseEarly() {
        var gate = AcceptGate(limit: 100)
        _ = gate.accepted(nowNs: 0)
        _ = gate.acceptFailed("Too many open files", nowNs: 1)
        XCTAssertEqual(gate.closed(), .resume)
        XCTAssertEqual(gate.retryDue(), .stayPaused, "the late timer changes nothing")
    }

    func testAtMostOneLogLinePerTenSeconds() {
        var gate = AcceptGate(limit: 100)
        var logged = 0
        var now: UInt64 = 5 * second
        // 250 ms pauses for 25 s: every retry fails again.
        for _ in 0..<100 {
            if isPause(gate.acceptFailed("Too many open files", nowNs: now), retry: AcceptGate.retryMs, logged: true) { logged += 1 }
            now += second / 4
            XCTAssertEqual(gate.retryDue(), .resume)
        }
        XCTAssertEqual(logged, 3)  // at 5 s, 15 s, 25 s... of 5–29.75 s
    }

    func testLimitAndFailureLinesShareTheInterval() {
        var gate = AcceptGate(limit: 1)
        XCTAssertTrue(isPause(gate.accepted(nowNs: second), retry: nil, logged: true))
        _ = gate.closed()
        XCTAssertTrue(isPause(gate.acceptFailed("Cannot allocate memory", nowNs: 2 * second), retry: AcceptGate.retryMs, logged: false))
    }

    func testAFailurePauseEndingAtTheLimitWaitsForAClose() {
        var gate = AcceptGate(limit: 2)
        _ = gate.accepted(nowNs: 0)
        _ = gate.acceptFailed("Too many open files", nowNs: 1)
        XCTAssertEqual(gate.setLimit(1), .keepAccepting)
        XCTAssertEqual(gate.retryDue(), .stayPaused)
        XCTAssertEqual(gate.paused, .limit)
        XCTAssertEqual(gate.closed(), .resume)
    }

    func testRaisingTheLimitResumesAndLoweringItPausesAtTheNextAccept() {
        var gate = AcceptGate(limit: 1)
        _ = gate.accepted(nowNs: 0)
        XCTAssertEqual(gate.setLimit(1), .stayPaused)
        XCTAssertEqual(gate.setLimit(5), .resume)
        _ = gate.accepted(nowNs: 0)
        XCTAssertEqual(gate.setLimit(2), .keepAccepting)
        XCTAssertTrue(isPause(gate.accepted(nowNs: 0), retry: nil, logged: false), "said already at 0")
        XCTAssertEqual(gate.open, 3)
    }

    func testAStoppedGateNeverResumes() {
        var gate = AcceptGate(limit: 1)
        _ = gate.accepted(nowNs: 0)
        gate.stop()
        XCTAssertEqual(gate.closed(), .keepAccepting)
        XCTAssertEqual(gate.retryDue(), .stayPaused)
    }
}
