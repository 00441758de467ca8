/// The SIGHUP reload protocol (SPEC §3.2 Config files), as a state machine whose answers the
/// gateway carries out: at most one reload runs at a time; a SIGHUP during one is not lost but
/// asks for exactly one more reload after it (however many SIGHUPs came meanwhile: the next
/// reload reads the files as they are then); a reload that has not finished within its deadline
/// is abandoned — the previous configuration keeps serving, its result is discarded whenever
/// it arrives, and a requested reload starts at once.
///
/// Each reload has an id so that a late result or a stale deadline is recognized. Not
/// thread-safe: used on the main loop only.
struct ReloadState: Equatable {
    /// The reload in flight.
    private(set) var running: UInt64?
    /// A SIGHUP came while one was running.
    private(set) var pending = false
    /// Reloads abandoned whose thread has not reported yet.
    private(set) var abandonedStillRunning = 0
    private var lastID: UInt64 = 0

    /// What a SIGHUP does.
    enum SignalAction: Equatable {
        /// Start reload `id` now (and arm its deadline).
        case start(UInt64)
        /// One is running: another follows it.
        case queued
    }

    /// What a result or a deadline does.
    struct Outcome: Equatable {
        /// Use the result (false: it belongs to an abandoned or unknown reload).
        var apply: Bool
        /// Start this reload next (a SIGHUP came meanwhile).
        var startNext: UInt64?
    }

    mutating func signal() -> SignalAction {
        if running != nil {
            pending = true
            return .queued
        }
        return .start(begin())
    }

    /// Reload `id` handed back its result.
    mutating func finished(_ id: UInt64) -> Outcome {
        guard running == id else {
            abandonedStillRunning = max(0, abandonedStillRunning - 1)
            return Outcome(apply: false, startNext: nil)
        }
        running = nil
        return Outcome(apply: true, startNext: takePending())
    }

    /// Reload `id`'s deadline passed. `apply` is true when it was abandoned now (false for a
    /// stale deadline of a reload that already finished).
    mutating func deadlinePassed(_ id: UInt64) -> Outcome {
        guard running == id else { return Outcome(apply: false, startNext: nil) }
        running = nil
        abandonedStillRunning += 1
        return Outcome(apply: true, startNext: takePending())
    }

    private mutating func takePending() -> UInt64? {
        guard pending else { return nil }
        pending = false
        return begin()
    }

    private mutating func begin() -> UInt64 {
        lastID += 1
        running = lastID
        return lastID
    }
}
