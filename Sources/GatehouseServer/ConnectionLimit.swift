import Glibc

/// How many client connections an accepting loop holds at most (SPEC §3.2 Connections), and
/// the open-file limit that the default is derived from.
enum ConnectionLimit {
    /// Descriptors kept for everything that is not a client connection: the standard streams,
    /// log files, listeners, each loop's epoll and wake-up descriptors, Redis, JWKS fetches.
    static func reserved(workers: Int) -> Int { 64 + 8 * workers }

    /// The least a derived limit gives each worker: under a tiny open-file limit the gateway
    /// still serves, and a failing accept pauses instead (see `ClientAcceptor`).
    static let derivedMinimum = 16
    static let maximum = 1_000_000

    /// `server.max_connections` when set (> 0); otherwise what the open-file limit leaves after
    /// the reserve, shared by the workers, halved because a proxied request holds an upstream
    /// connection too: (openFiles − (64 + 8 × workers)) / workers / 2, at least 16.
    static func perWorker(configured: Int, openFiles: Int, workers: Int) -> Int {
        if configured > 0 { return min(configured, maximum) }
        let workers = max(workers, 1)
        let available = openFiles - reserved(workers: workers)
        return min(max(available / workers / 2, derivedMinimum), maximum)
    }

    /// Raises the soft open-file limit to the hard one (SPEC §3.2) and returns the soft limit
    /// then in force. When the hard limit is unlimited (RLIM_INFINITY), or the kernel refuses it
    /// (`fs.nr_open`), the soft limit stays as it was.
    static func raiseOpenFileLimit() -> Int {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 1024 }
        if limits.rlim_cur < limits.rlim_max && limits.rlim_max != rlim_t.max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        return limits.rlim_cur == rlim_t.max ? maximum : Int(clamping: limits.rlim_cur)
    }
}
