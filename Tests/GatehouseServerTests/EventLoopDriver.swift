import CLibevent
import Foundation

/// Event bases for a test, run by hand: ``run(until:timeout:)`` turns every base with
/// `EVLOOP_ONCE` until a condition holds, a deadline passes or an iteration cap is hit — never
/// longer. A 5 ms persistent tick on each base makes sure `EVLOOP_ONCE` always returns.
final class EventLoopDriver {
    private(set) var bases: [OpaquePointer] = []
    private var ticks: [OpaquePointer] = []

    init(count: Int = 1) {
        for _ in 0..<count {
            let base = event_base_new()!
            let tick = gh_timer_new(base, 1, { _, _, _ in }, nil)!
            _ = gh_timer_add_ms(tick, 5)
            bases.append(base)
            ticks.append(tick)
        }
    }

    var base: OpaquePointer { bases[0] }

    /// Turns the loops until `done()`; returns whether it became true in time.
    @discardableResult
    func run(until done: () -> Bool, timeout: TimeInterval = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var iterations = 0
        while !done() {
            if Date() >= deadline || iterations >= 100_000 { return false }
            iterations += 1
            for base in bases { event_base_loop(base, EVLOOP_ONCE) }
        }
        return true
    }

    /// Turns the loops for `seconds` (bounded the same way).
    func run(for seconds: TimeInterval) {
        let end = Date().addingTimeInterval(seconds)
        run(until: { Date() >= end }, timeout: seconds + 1)
    }

    /// Frees the ticks and bases; whatever used them must be gone first.
    func shutdown() {
        for tick in ticks { event_free(tick) }
        for base in bases { event_base_free(base) }
        ticks = []
        bases = []
    }
}
