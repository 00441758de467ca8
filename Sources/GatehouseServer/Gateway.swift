import CLibevent
import CEvhttpHook
import Glibc
import Synchronization
import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehouseSessions
import GatehouseTLS

/// What the loops share: thread-safe sinks and the current snapshot for readers off the loops.
final class SharedState: Sendable {
    let log: LogSink
    let metrics: Metrics
    /// The soft open-file limit after start-up raised it (SPEC §3.2): the default connection
    /// limit is derived from it.
    let openFileLimit: Int
    let current: Mutex<Snapshot>
    /// Reaches every loop's WebSocket tunnels (a logout closes its session's tunnels at once).
    let tunnelHub = TunnelHub()
    /// Rate limits' memory table and counters (SPEC §13).
    let rateLimits = RateLimitRuntime()
    /// Issuers whose keys loops wait for (an unknown `kid`); the main loop takes them when woken.
    private let keysWanted = Mutex<Set<String>>([])
    private let mainWake = Atomic<UInt>(0)

    init(log: LogSink, metrics: Metrics, snapshot: Snapshot, openFileLimit: Int) {
        self.log = log
        self.metrics = metrics
        self.current = Mutex(snapshot)
        self.openFileLimit = openFileLimit
    }

    /// The main loop's event that `keysWanted(issuer:)` activates.
    func setMainWake(_ event: OpaquePointer) { mainWake.store(UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(event))), ordering: .releasing) }

    /// Any thread: a loop has requests waiting for `issuer`'s keys. The main loop answers every
    /// loop with `Worker.keysSettled(_:)` once a refresh of that issuer has ended, or at once
    /// when none may run (``KeyManager/keysWanted(_:)``).
    func keysWanted(issuer: String) {
        keysWanted.withLock { _ = $0.insert(issuer) }
        if let event = OpaquePointer(bitPattern: mainWake.load(ordering: .acquiring)) { event_active(event, 0, 0) }
    }

    /// The accepted discovery documents by issuer name (SPEC §14.1), for the OIDC login's
    /// endpoints; written by the main loop's ``KeyManager``, read by the loops at login time.
    let providerMetadata = Mutex<[String: ProviderMetadata]>([:])

    /// Introspection questions of the loops (SPEC §14.3), taken by the main loop when woken.
    private let introspectionAsks = Mutex<[IntrospectionAsk]>([])

    /// Any thread: asks the main loop's ``Introspector``; the answer comes back to the worker
    /// through its inbox (`Worker.introspected`).
    func introspect(_ ask: IntrospectionAsk) {
        introspectionAsks.withLock { $0.append(ask) }
        if let event = OpaquePointer(bitPattern: mainWake.load(ordering: .acquiring)) { event_active(event, 0, 0) }
    }

    func takeIntrospectionAsks() -> [IntrospectionAsk] {
        introspectionAsks.withLock { asks in
            defer { asks.removeAll() }
            return asks
        }
    }

    func takeKeysWanted() -> Set<String> {
        keysWanted.withLock { wanted in
            defer { wanted.removeAll() }
            return wanted
        }
    }
}

/// The running gateway: worker loops, the main loop (signals and the admin listener), reloads
/// and the graceful stop.
///
/// Threading: the main loop's callbacks run on the thread that called `run()`; reloads load
/// files on a thread of their own and hand the result back through the main loop.
public final class Gateway: @unchecked Sendable {
    private let configPath: String
    private let cpuCount: Int
    private let mainBase: OpaquePointer
    private var workers: [Worker] = []
    private var shared: SharedState!
    private var admin: AdminServer?
    private var signalEvents: [OpaquePointer] = []
    private var stopping = false
    private var reloads = ReloadState()
    /// Fires when the reload in flight has run for `reloadDeadlineMs` (SPEC §3.2).
    private var reloadDeadline: OpaquePointer?
    private var deadlineID: UInt64 = 0
    private var graceTimer: OpaquePointer?
    private var drainPoll: OpaquePointer?
    private let reloadResults = Mutex<[(id: UInt64, result: Result<Snapshot, SnapshotError>)]>([])
    private var reloadEvent: OpaquePointer?
    private var keyManager: KeyManager!
    private var introspector: Introspector!
    /// Password checks for logins, off the loops; made when sessions are first configured.
    private var passwordPool: PasswordCheckPool?

    /// Gives libevent gatehouse's per-thread allocator (Sources/CEvhttpHook/allocator.c), unless
    /// `GATEHOUSE_EVENT_ALLOCATOR=libc` keeps glibc's (to compare, or to rule it out). Only
    /// before any other libevent call of the process: `run` calls it first thing.
    public static func installEventAllocator() {
        if let choice = getenv("GATEHOUSE_EVENT_ALLOCATOR"), String(cString: choice) == "libc" { return }
        gh_install_event_allocator()
    }

    public init(configPath: String, cpuCount: Int) {
        self.configPath = configPath
        self.cpuCount = cpuCount
        evthread_use_pthreads()
        gh_ignore_sigpipe()
        let cfg = event_config_new()!
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.rawValue))
        mainBase = event_base_new_with_config(cfg)!
        event_config_free(cfg)
    }

    /// Loads the config, opens every listener, serves until SIGTERM/SIGINT; returns the exit code.
    public func run() -> Int32 {
        let loaded = ConfigLoader.load(path: configPath, cpuCount: cpuCount, tlsCheck: ServerTLSContext.check)
        for problem in loaded.problems { Gateway.say("\(problem)") }
        guard let config = loaded.config else {
            Gateway.say("configuration \(configPath) has \(loaded.errors.count) error\(loaded.errors.count == 1 ? "" : "s"); not starting")
            return 1
        }
        var snapshot: Snapshot
        switch Snapshot.make(config: config, generation: 1) {
        case .success(let s): snapshot = s
        case .failure(let e):
            for p in e.problems { Gateway.say("\(configPath): error: \(p)") }
            return 1
        }
        let sink: LogSink
        do { sink = try LogSink(path: config.accessLog.path) } catch {
            Gateway.say("error: \(error)")
            return 1
        }
        let metrics = Metrics(workerCount: config.server.workers)
        metrics.lastReloadSuccessMs.store(Clock.wallMs(), ordering: .relaxed)
        keyManager = KeyManager(base: mainBase, metrics: metrics)
        snapshot = snapshot.with(verifier: keyManager.configure(config.jwt)).with(sessions: sessionRuntime(config, previous: nil))
        let openFiles = ConnectionLimit.raiseOpenFileLimit()
        shared = SharedState(log: sink, metrics: metrics, snapshot: snapshot, openFileLimit: openFiles)
        keyManager.publish = { [unowned self] verifier in self.publishVerifier(verifier) }
        keyManager.metadataAccepted = { [unowned self] issuer, metadata in
            self.shared.providerMetadata.withLock { $0[issuer] = metadata }   // nil removes
        }
        introspector = Introspector(base: mainBase, metrics: metrics)
        introspector.endpoint = { [unowned self] issuer in self.keyManager.metadata(issuer)?.introspectionEndpoint }
        introspector.answer = { [unowned self] worker, key, result in
            guard self.workers.indices.contains(worker) else { return }
            self.workers[worker].post { $0.introspected(key, result) }
        }
        // After `publish` (the loops' inboxes are FIFO): a woken request sees the new keys.
        keyManager.settled = { [unowned self] issuer in
            for worker in self.workers { worker.post { $0.keysSettled(issuer) } }
        }
        sink.startWriter()
        do {
            for i in 0..<config.server.workers {
                let worker = Worker(index: i, snapshot: snapshot, shared: shared)
                for address in config.server.listen { try worker.listen(on: address) }
                workers.append(worker)
            }
            if let adminSettings = config.admin {
                admin = try AdminServer(base: mainBase, listen: adminSettings.listen, shared: shared,
                                        ready: { [unowned self] in self.keyManager.isReady })
                admin?.adopt(config)
            }
        } catch {
            Gateway.say("error: \(error)")
            sink.stop()
            return 1
        }
        installSignals()
        shared.tunnelHub.register(workers)
        for worker in workers { worker.start() }
        Gateway.say("gatehouse listening on \(config.server.listen.map(\.description).joined(separator: ", "))" +
                    (config.server.tls == nil ? "" : " (TLS)") + " with \(workers.count) worker(s)" +
                    " of at most \(ConnectionLimit.perWorker(configured: config.server.maxConnections, openFiles: openFiles, workers: workers.count))" +
                    " connections (open files \(openFiles))" +
                    (config.admin.map { "; admin on \($0.listen)" } ?? ""))
        event_base_loop(mainBase, EVLOOP_NO_EXIT_ON_EMPTY)
        for worker in workers { worker.join() }
        sink.stop()
        Gateway.say("gatehouse stopped")
        return 0
    }

    /// One line to stderr: the gateway's own log (the access log is separate).
    static func say(_ line: String) {
        let text = "\(Clock.rfc3339(ms: Clock.wallMs())) \(line)\n"
        var bytes = text
        bytes.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    // MARK: signals

    private func installSignals() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        for sig in [SIGHUP, SIGTERM, SIGINT, SIGUSR1] {
            let ev = gh_signal_new(mainBase, sig, { sig, _, arg in
                Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue().signalled(sig)
            }, me)!
            event_add(ev, nil)
            signalEvents.append(ev)
        }
        reloadEvent = gh_timer_new(mainBase, 1, { _, _, arg in
            Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue().reloadFinished()
        }, me)
        let wake = gh_timer_new(mainBase, 1, { _, _, arg in
            let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
            for issuer in gateway.shared.takeKeysWanted() { gateway.keyManager.keysWanted(issuer) }
            for ask in gateway.shared.takeIntrospectionAsks() { gateway.introspector.ask(ask) }
        }, me)!
        shared.setMainWake(wake)
    }

    private func signalled(_ sig: Int32) {
        switch sig {
        case SIGHUP: startReload()
        case SIGUSR1:
            shared.log.reopen()
            Gateway.say("reopening log files")
        default: beginStop()
        }
    }

    // MARK: reload

    /// A reload longer than this is abandoned (SPEC §3.2): 30 s.
    static let reloadDeadlineMs = 30_000

    private func startReload() {
        guard !stopping else { return }
        switch reloads.signal() {
        case .queued:
            Gateway.say("reload requested while one is running: another reload follows it")
        case .start(let id):
            beginReload(id)
        }
    }

    /// Loads the files on a thread of its own; the result comes back through `reloadEvent`.
    private func beginReload(_ id: UInt64) {
        Gateway.say("reloading \(configPath)")
        armReloadDeadline(id)
        let path = configPath, cpus = cpuCount
        let generation = shared.current.withLock { $0.generation } + 1
        let box = Unmanaged.passRetained(ReloadJob { [self] in
            let loaded = ConfigLoader.load(path: path, cpuCount: cpus, tlsCheck: ServerTLSContext.check)
            let result: Result<Snapshot, SnapshotError>
            if let config = loaded.config {
                switch Snapshot.make(config: config, generation: generation) {
                case .success(let s): result = .success(s)
                case .failure(let e): result = .failure(SnapshotError(problems: loaded.problems.map(\.description) + e.problems))
                }
            } else {
                result = .failure(SnapshotError(problems: loaded.problems.map(\.description)))
            }
            reloadResults.withLock { $0.append((id, result)) }
            event_active(reloadEvent, 0, 0)
        }).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { arg in
            gh_block_signals_in_thread()
            Unmanaged<ReloadJob>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_detach(thread)
    }

    /// One timer, made on first use and re-armed for each reload (`event_add` on a pending
    /// timer moves it): `deadlineID` names the reload it is armed for.
    private func armReloadDeadline(_ id: UInt64) {
        if reloadDeadline == nil {
            reloadDeadline = gh_timer_new(mainBase, 0, { _, _, arg in
                let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
                gateway.reloadDeadlinePassed(gateway.deadlineID)
            }, Unmanaged.passUnretained(self).toOpaque())
        }
        deadlineID = id
        _ = gh_timer_add_ms(reloadDeadline, Int64(Gateway.reloadDeadlineMs))
    }

    /// The deadline of reload `id` passed (or was cancelled by its result: then a no-op).
    private func reloadDeadlinePassed(_ id: UInt64) {
        let outcome = reloads.deadlinePassed(id)
        guard outcome.apply else { return }
        Gateway.say("reload abandoned: not finished after \(Gateway.reloadDeadlineMs / 1000) s; "
                    + "the previous configuration keeps serving")
        shared.metrics.reloadFailures.add(1, ordering: .relaxed)
        if let next = outcome.startNext { beginReload(next) }
    }

    private func reloadFinished() {
        let results = reloadResults.withLock { r -> [(id: UInt64, result: Result<Snapshot, SnapshotError>)] in
            let taken = r
            r.removeAll()
            return taken
        }
        for (id, result) in results {
            let outcome = reloads.finished(id)
            guard outcome.apply else {
                Gateway.say("an abandoned reload finished late: its result is discarded")
                continue
            }
            if let reloadDeadline { event_del(reloadDeadline) }
            apply(result)
            if let next = outcome.startNext { beginReload(next) }
        }
    }

    private func apply(_ result: Result<Snapshot, SnapshotError>) {
        switch result {
        case .failure(let error):
            for p in error.problems { Gateway.say(p) }
            Gateway.say("reload rejected: the previous configuration keeps serving")
            shared.metrics.reloadFailures.add(1, ordering: .relaxed)
        case .success(let loaded):
            let previous = shared.current.withLock { $0.sessions }
            let next = loaded.with(verifier: keyManager.configure(loaded.config.jwt))
                .with(sessions: sessionRuntime(loaded.config, previous: previous))
            let old = shared.current.withLock { $0.config }
            if old.server.listen != next.config.server.listen || old.server.workers != next.config.server.workers {
                Gateway.say("warning: server.listen and server.workers change only on restart")
            }
            if old.accessLog.path != next.config.accessLog.path { shared.log.reopen(path: next.config.accessLog.path) }
            shared.current.withLock { $0 = next }
            admin?.adopt(next.config)
            for worker in workers { worker.post { $0.adopt(next) } }
            shared.metrics.reloads.add(1, ordering: .relaxed)
            shared.metrics.lastReloadSuccessMs.store(Clock.wallMs(), ordering: .relaxed)
            Gateway.say("configuration reloaded (generation \(next.generation))")
        }
    }

    private func sessionRuntime(_ config: GatewayConfig, previous: SessionRuntime?) -> SessionRuntime? {
        guard config.sessions != nil else { return nil }
        let pool = passwordPool ?? PasswordCheckPool(threads: 2)
        passwordPool = pool
        return SessionRuntime.make(config.sessions, previous: previous, passwords: pool)
    }

    /// A JWKS refresh changed the keys: every loop serves with the new verifier from its next request.
    private func publishVerifier(_ verifier: JWTVerifier?) {
        let next = shared.current.withLock { current -> Snapshot in
            current = current.with(verifier: verifier)
            return current
        }
        for worker in workers { worker.post { $0.adopt(next) } }
    }

    // MARK: stop

    private func beginStop() {
        guard !stopping else { return }
        stopping = true
        let grace = shared.current.withLock { $0.config.server.shutdownGraceMs }
        Gateway.say("stopping: draining requests in flight (grace \(grace) ms)")
        for worker in workers { worker.post { $0.beginDrain() } }
        let me = Unmanaged.passUnretained(self).toOpaque()
        graceTimer = gh_timer_new(mainBase, 0, { _, _, arg in
            let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
            Gateway.say("grace period over: closing the remaining requests")
            for worker in gateway.workers { worker.forceExit() }
            event_base_loopexit(gateway.mainBase, nil)
        }, me)
        _ = gh_timer_add_ms(graceTimer, grace)
        // The main loop ends when every worker's loop has ended (checked every 20 ms).
        drainPoll = gh_timer_new(mainBase, 1, { _, _, arg in
            let gateway = Unmanaged<Gateway>.fromOpaque(arg!).takeUnretainedValue()
            if gateway.workers.allSatisfy({ $0.loopEnded.load(ordering: .acquiring) }) {
                event_base_loopexit(gateway.mainBase, nil)
            }
        }, me)
        _ = gh_timer_add_ms(drainPoll, 20)
    }
}

final class ReloadJob: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
