import XCTest
@testable import GatehouseServer

/// SPEC §3.2 Config files: one reload at a time, a SIGHUP during one is not lost, a reload past
/// its deadline is abandoned and its late result discarded.
final class ReloadStateTests: XCTestCase {
    func testASignalWhileIdleStartsAReload() {
        var state = ReloadState()
        XCTAssertEqual(state.signal(), .start(1))
        XCTAssertEqual(state.running, 1)
        XCTAssertEqual(state.finished(1), .init(apply: true, startNext: nil))
        XCTAssertNil(state.running)
        XCTAssertEqual(state.signal(), .start(2), "each reload has its own id")
    }

    func testSignalsDuringAReloadAskForExactlyOneMore() {
        var state = ReloadState()
        XCTAssertEqual(state.signal(), .start(1))
        XCTAssertEqual(state.signal(), .queued)
        XCTAssertEqual(state.signal(), .queued)
        XCTAssertTrue(state.pending)
        XCTAssertEqual(state.finished(1), .init(apply: true, startNext: 2), "one more, however many came")
        XCTAssertFalse(state.pending)
        XCTAssertEqual(state.finished(2), .init(apply: true, startNext: nil))
        XCTAssertEqual(state, { var idle = ReloadState(); _ = idle.signal(); _ = idle.signal(); _ = idle.finished(1)
                                _ = idle.finished(2); return idle }())
    }

    func testAFailedReloadLeavesLaterSignalsWorking() {
        // A result is a result, good or bad: the state machine only learns that it came back.
        var state = ReloadState()
        _ = state.signal()
        _ = state.finished(1)
        XCTAssertEqual(state.signal(), .start(2))
    }

    func testAReloadPastItsDeadlineIsAbandonedAndItsLateResultDiscarded() {
        var state = ReloadState()
        XCTAssertEqual(state.signal(), .start(1))
        XCTAssertEqual(state.deadlinePassed(1), .init(apply: true, startNext: nil))
        XCTAssertNil(state.running)
        XCTAssertEqual(state.abandonedStillRunning, 1)
        XCTAssertEqual(state.signal(), .start(2), "a new reload does not wait for the abandoned one")
        XCTAssertEqual(state.finished(1), .init(apply: false, startNext: nil), "the late result is discarded")
        XCTAssertEqual(state.abandonedStillRunning, 0)
        XCTAssertEqual(state.running, 2, "and does not end the reload in flight")
        XCTAssertEqual(state.finished(2), .init(apply: true, startNext: nil))
    }

    func testASignalDuringAStuckReloadStartsWhenItIsAbandoned() {
        var state = ReloadState()
        _ = state.signal()
        XCTAssertEqual(state.signal(), .queued)
        XCTAssertEqual(state.deadlinePassed(1), .init(apply: true, startNext: 2))
        XCTAssertEqual(state.running, 2)
    }

    func testAStaleDeadlineChangesNothing() {
        var state = ReloadState()
        _ = state.signal()
        _ = state.finished(1)
        XCTAssertEqual(state.deadlinePassed(1), .init(apply: false, startNext: nil))
        _ = state.signal()
        XCTAssertEqual(state.deadlinePassed(1), .init(apply: false, startNext: nil), "reload 2 keeps running")
        XCTAssertEqual(state.running, 2)
        XCTAssertEqual(state.abandonedStillRunning, 0)
    }

    func testAnUnknownResultIsDiscarded() {
        var state = ReloadState()
        XCTAssertEqual(state.finished(7), .init(apply: false, startNext: nil))
        XCTAssertEqual(state.abandonedStillRunning, 0, "never negative")
    }
}
