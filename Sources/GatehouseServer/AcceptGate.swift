/// When an accepting loop stops and resumes accepting (SPEC §3.2 Connections): the decisions of
/// `ClientAcceptor`, without libevent, driven by events and a clock given by the caller.
///
/// At `limit` open connections accepting pauses until one closes; after a failed accept (no
/// descriptors or memory) it pauses for `retryMs`, or until a connection closes. A pause is
/// reported for the log at most once per `logIntervalNs`.
struct AcceptGate {
    static let retryMs: Int64 = 250
    static let logIntervalNs: UInt64 = 10_000_000_000

    /// What the acceptor does next.
    enum Action: Equatable {
        case keepAccepting
        /// Disable the listeners; with `retryAfterMs`, enable them again then (`retryDue`).
        /// `log`: the line to write, when one is due.
        case pause(retryAfterMs: Int64?, log: String?)
        /// Enable the listeners (and cancel a pending retry).
        case resume
        /// Already paused (or still at the limit): nothing changes.
        case stayPaused
    }

    enum Pause: Equatable { case limit, acceptFailed }

    private(set) var open = 0
    private(set) var limit: Int
    private(set) var paused: Pause?
    private var lastLogNs: UInt64?

    init(limit: Int) { self.limit = limit }

    /// A connection was accepted and handed over.
    mutating func accepted(nowNs: UInt64) -> Action {
        open += 1
        guard open >= limit, paused == nil else { return paused == nil ? .keepAccepting : .stayPaused }
        paused = .limit
        return .pause(retryAfterMs: nil,
                      log: due(nowNs, "\(open) client connections (server.max_connections): accepting paused until one closes"))
    }

    /// One of the accepted connections closed.
    mutating func closed() -> Action {
        open -= 1
        return paused == nil ? .keepAccepting : resumeIfBelowLimit()
    }

    /// accept(2) failed with `reason` (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...).
    mutating func acceptFailed(_ reason: String, nowNs: UInt64) -> Action {
        guard paused == nil else { return .stayPaused }
        paused = .acceptFailed
        return .pause(retryAfterMs: AcceptGate.retryMs,
                      log: due(nowNs, "accept failed (\(reason)): accepting paused for \(AcceptGate.retryMs) ms"))
    }

    /// The retry time after a failed accept has come.
    mutating func retryDue() -> Action {
        paused == .acceptFailed ? resumeIfBelowLimit() : .stayPaused
    }

    /// A reload changed the limit.
    mutating func setLimit(_ limit: Int) -> Action {
        self.limit = limit
        return paused == .limit ? resumeIfBelowLimit() : .keepAccepting
    }

    /// The listeners are gone (a draining worker): nothing to pause or resume any more.
    mutating func stop() { paused = nil }

    private mutating func resumeIfBelowLimit() -> Action {
        guard open < limit else {
            paused = .limit
            return .stayPaused
        }
        paused = nil
        return .resume
    }

    private mutating func due(_ nowNs: UInt64, _ line: String) -> String? {
        if let last = lastLogNs, nowNs &- last < AcceptGate.logIntervalNs { return nil }
        lastLogNs = nowNs
        return line + " (said at most every 10 s)"
    }
}
