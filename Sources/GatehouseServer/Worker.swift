import CLibevent
import CEvhttpHook
import Glibc
import Synchronization
import GatehouseCore
import GatehouseAuth
import GatehouseDecision
import GatehouseConfig
import GatehousePolicy

/// One event loop: its `event_base`, its evhttp server with its own `SO_REUSEPORT` listeners,
/// its upstream pools and its request-id generator.
///
/// Threading: every method runs on this worker's loop thread, except `post(_:)`, which any
/// thread may call to run a closure on the loop. Nothing here is shared with other loops but
/// the immutable `Snapshot` and the thread-safe `LogSink` and `Metrics`.
final class Worker: @unchecked Sendable {
    let index: Int
    let base: OpaquePointer
    /// Body bytes on their way to a client (`evhttp_send_reply_chunk` empties it each time).
    let chunkBuffer: OpaquePointer = evbuffer_new()!
    let http: OpaquePointer
    let shared: SharedState
    private(set) var snapshot: Snapshot
    private var pools: [String: TargetPool] = [:]
    /// Per upstream name: its target pools under the current snapshot, and where its
    /// round-robin stands (kept across reloads while the upstream exists).
    private var upstreamTargets: [String: UpstreamTargets] = [:]
    /// The upstream of the last `pools(for:in:)` under the current snapshot: a request to the
    /// same upstream as the one before (the common case) costs a name comparison instead of
    /// two dictionary lookups (a String hash each, ~300 instructions).
    private var lastUpstream: (name: String, targets: UpstreamTargets)?
    var ids = RequestIDGenerator()
    /// This loop's verified-token cache (SPEC §5.1); entries of an older verifier are ignored.
    let tokenCache = VerifiedTokenCache()
    /// Requests waiting for an issuer's keys, by issuer name (see Worker+KeyWait.swift).
    var keyWaits: [String: KeyWaitQueue] = [:]
    /// This loop's introspection answers, and the requests waiting for one by token hash
    /// (see Worker+Introspection.swift).
    let introspectionCache = IntrospectionCache()
    var introspectionWaits: [IntrospectionKey: [(PendingRequest, IntrospectionWait)]] = [:]
    /// This loop's HTTP client for OIDC code exchanges (made at the first callback).
    var oidcFetcher: HTTPFetcher?
    /// This loop's Redis connection for sessions, and the settings it was made for.
    var redisStore: RedisSessionStore?
    var redisSetting: SessionStoreSetting?
    var redisIdle: Int64 = 0
    /// Rate limits (Worker+RateLimit.swift): the shared memory table, this loop's Redis connection.
    var rateLimitTable: RateLimitTable?
    var rateLimiter: RedisRateLimiter?
    var logSecond: Int64 = -1
    var logPrefix: [UInt8] = []
    var logScratch: [UInt8] = []
    var inFlight = 0
    /// Client connections whose `server.header_timeout` timer runs (Worker+RequestHeadGuard):
    /// while 0, a completed head needs no connection lookup.
    var headTimersArmed = 0
    /// `server.read_timeout` as evhttp takes it (see `restoreClientTimeouts`).
    private(set) var clientTimeout = timeval()
    /// Client input kept while a request is in flight (pipelined requests, a client that keeps
    /// sending): above this, reading the socket pauses until evhttp takes the input (see
    /// `keepReadingClient`: set only while the request is in flight, since a read watermark
    /// re-adds the read event on every change of the input buffer, i.e. every header line).
    private(set) var clientInputLimit = 0
    private(set) var draining = false
    /// This loop's listeners, its count of client connections and its pauses (SPEC §3.2).
    private(set) var acceptor: ClientAcceptor!
    private(set) var connections: [OpaquePointer: ClientConnection] = [:]
    /// This loop's WebSocket tunnels (Worker+Tunnels.swift).
    let tunnels = TunnelRegistry()
    private let inbox = Mutex<[@Sendable (Worker) -> Void]>([])
    private var wakeEvent: OpaquePointer?
    /// Written by other threads (`post`) to wake this loop; see `init`.
    private let wakeFd: Int32
    /// Set once this worker's loop has returned (read by the main thread while stopping).
    let loopEnded = Atomic<Bool>(false)
    private var drainPoll: OpaquePointer?
    private var thread = pthread_t()

    init(index: Int, snapshot: Snapshot, shared: SharedState) {
        self.index = index
        self.snapshot = snapshot
        self.shared = shared
        // No lock on this base: only this worker's thread touches it once started, and with
        // libevent's threading on, a locked base takes and releases its lock ~27 times per
        // proxied request (every event_add, event_del and activation). Other threads reach the
        // loop only through `post`, which wakes it with an eventfd instead of `event_active`.
        let cfg = event_config_new()!
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.rawValue))
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_NOLOCK.rawValue))
        base = event_base_new_with_config(cfg)!
        wakeFd = gh_wake_fd()
        precondition(wakeFd >= 0, "eventfd: \(String(cString: strerror(errno)))")
        event_config_free(cfg)
        http = evhttp_new(base)!
        configureHTTP()
        acceptor = ClientAcceptor(base: base, http: http, name: "worker \(index)", limit: connectionLimit)
        acceptor.accepted = { [unowned(unsafe) self] evcon in self.connection(for: evcon).counted = true }
        let me = Unmanaged.passUnretained(self).toOpaque()
        wakeEvent = event_new(base, wakeFd, gh_ev_read() | gh_ev_persist(), { fd, _, arg in
            var count: UInt64 = 0
            _ = read(fd, &count, MemoryLayout<UInt64>.size)
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().drainInbox()
        }, me)
        event_add(wakeEvent, nil)
        evhttp_set_gencb(http, { req, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().handle(req!)
        }, me)
        // Each new connection speaks TLS when the snapshot of the moment has `server.tls` (so a
        // reload can turn it on or off).
        evhttp_set_bevcb(http, { _, arg in
            let worker = Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue()
            return worker.acceptor.bufferevent(tls: worker.snapshot.tls?.context)
        }, me)
    }

    private func configureHTTP() {
        let server = snapshot.config.server
        let methods = EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_HEAD.rawValue |
            EVHTTP_REQ_PUT.rawValue | EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_OPTIONS.rawValue | EVHTTP_REQ_PATCH.rawValue
        evhttp_set_allowed_methods(http, UInt16(methods))
        evhttp_set_default_content_type(http, nil)
        // evhttp refuses only far past the limit (its refusal cannot tell a long request line
        // from garbage); the exact limit is checked on the parsed head, for a precise 431.
        evhttp_set_max_headers_size(http, Int(server.maxHeaderBytes) * 2 + 8192)
        evhttp_set_max_body_size(http, Int(server.maxBodyBytes))
        clientTimeout = timeval(tv_sec: Int(server.readTimeoutMs / 1000), tv_usec: Int((server.readTimeoutMs % 1000) * 1000))
        evhttp_set_timeout_tv(http, &clientTimeout)
        clientInputLimit = Int(server.maxHeaderBytes) * 2 + 8192 + Int(server.maxBodyBytes) + 65536
    }

    /// Client connections this loop holds at most (SPEC §3.2): `server.max_connections`, or
    /// derived from the open-file limit.
    private var connectionLimit: Int {
        ConnectionLimit.perWorker(configured: snapshot.config.server.maxConnections,
                                  openFiles: shared.openFileLimit, workers: snapshot.config.server.workers)
    }

    /// Opens this loop's own listener on `address` (SO_REUSEPORT: every loop binds the same port
    /// and the kernel spreads connections evenly).
    func listen(on address: ListenAddress) throws(ServerError) {
        try acceptor.bind(address, reusePort: true)
    }

    /// Runs the loop on a new thread.
    func start() {
        let me = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let worker = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
            gh_block_signals_in_thread()
            gh_install_error_hook({ req, code, ctx in
                Unmanaged<Worker>.fromOpaque(ctx!).takeUnretainedValue().handleEvhttpError(req!, code: Int(code))
            }, Unmanaged.passUnretained(worker).toOpaque())
            Worker.installRawHeadCheck
            gh_install_head_event_hook({ req, event, ctx in
                Unmanaged<Worker>.fromOpaque(ctx!).takeUnretainedValue().headEvent(req!, event: event)
            }, Unmanaged.passUnretained(worker).toOpaque())
            event_base_loop(worker.base, EVLOOP_NO_EXIT_ON_EMPTY)
            worker.loopEnded.store(true, ordering: .releasing)
            return nil
        }, me)
    }

    func join() {
        pthread_join(thread, nil)
    }

    /// Runs `body` on this worker's loop. Safe from any thread.
    func post(_ body: @escaping @Sendable (Worker) -> Void) {
        inbox.withLock { $0.append(body) }
        var one: UInt64 = 1
        _ = write(wakeFd, &one, MemoryLayout<UInt64>.size)
    }

    private func drainInbox() {
        let items = inbox.withLock { items -> [@Sendable (Worker) -> Void] in
            let taken = items
            items.removeAll()
            return taken
        }
        for item in items { item(self) }
    }

    /// Adopts a reloaded config: new requests use it; requests in flight finish on the old one.
    func adopt(_ next: Snapshot) {
        snapshot = next
        configureHTTP()
        acceptor.limit = connectionLimit
        var live: Set<String> = []
        for targets in next.targets.values {
            for t in targets { live.insert(t.key) }
        }
        pools = pools.filter { live.contains($0.key) }
        upstreamTargets = upstreamTargets.filter { next.targets[$0.key] != nil }
        for targets in upstreamTargets.values { targets.pools = nil }
        lastUpstream = nil
        recheckTunnels(under: next)
    }

    /// Stops accepting; the loop ends once the requests in flight are done (or the grace ends).
    func beginDrain() {
        draining = true
        acceptor.closeListeners()
        drainTunnels()
        exitIfDrained()
    }

    /// While draining: once nothing is in flight and every response has been written out to
    /// its client (evhttp may still hold the tail of one in a connection's output buffer), the
    /// loop ends. Checked when an exchange finishes and every 10 ms.
    func exitIfDrained() {
        guard draining, inFlight == 0, tunnels.all.isEmpty else { return }
        for evcon in connections.keys {
            if evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(evcon))) > 0 {
                return armDrainPoll()
            }
        }
        event_base_loopexit(base, nil)
    }

    private func armDrainPoll() {
        guard drainPoll == nil else { return }
        drainPoll = gh_timer_new(base, 1, { _, _, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().exitIfDrained()
        }, Unmanaged.passUnretained(self).toOpaque())
        _ = gh_timer_add_ms(drainPoll, 10)
    }

    func forceExit() { post { event_base_loopbreak($0.base) } }

    // MARK: upstream pools

    /// The pools of `upstream`'s targets in `snapshot` (the request's own), made on first use.
    /// Cached per upstream for the loop's current snapshot only: a request decided under an
    /// older snapshot (it waited across a reload) gets its own snapshot's targets.
    func pools(for upstream: UpstreamSettings, in snapshot: Snapshot) -> [TargetPool] {
        guard snapshot === self.snapshot else { return makePools(for: upstream, in: snapshot) }
        let targets = targets(of: upstream.name)
        if let cached = targets.pools { return cached }
        let made = makePools(for: upstream, in: snapshot)
        targets.pools = made
        return made
    }

    /// The per-upstream record of `name` (made on first use).
    private func targets(of name: String) -> UpstreamTargets {
        if let last = lastUpstream, last.name == name { return last.targets }
        let targets: UpstreamTargets
        if let known = upstreamTargets[name] {
            targets = known
        } else {
            targets = UpstreamTargets()
            upstreamTargets[name] = targets
        }
        lastUpstream = (name, targets)
        return targets
    }

    private func makePools(for upstream: UpstreamSettings, in snapshot: Snapshot) -> [TargetPool] {
        (snapshot.targets[upstream.name] ?? []).map { target in
            if let pool = pools[target.key] {
                pool.maxIdle = upstream.maxIdlePerWorker
                pool.timeoutMs = upstream.timeoutMs
                return pool
            }
            let pool = TargetPool(target: target, base: base, maxIdle: upstream.maxIdlePerWorker, timeoutMs: upstream.timeoutMs)
            pools[target.key] = pool
            return pool
        }
    }

    func pickTarget(_ upstream: UpstreamSettings, in snapshot: Snapshot, skipping: TargetPool? = nil) -> TargetPool? {
        let candidates = pools(for: upstream, in: snapshot)
        return targets(of: upstream.name).balancer.pick(candidates, skipping: skipping)
    }

    /// Runs `body` on the next loop iteration (to free objects outside their own callbacks).
    func later(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(DeferredWork(body)).toOpaque()
        event_base_once(base, -1, gh_ev_timeout(), { _, _, arg in
            Unmanaged<DeferredWork>.fromOpaque(arg!).takeRetainedValue().body()
        }, box, nil)
    }

    // MARK: client connections

    /// The per-connection record, made when the connection is accepted (or, should the
    /// acceptor not have seen it, when it brings its first request).
    func connection(for evcon: OpaquePointer) -> ClientConnection {
        if let existing = connections[evcon] { return existing }
        let conn = ClientConnection(evcon: evcon, worker: self)
        connections[evcon] = conn
        shared.metrics.connectionOpened(worker: index)
        evhttp_connection_set_closecb(evcon, { evcon, arg in
            let conn = Unmanaged<ClientConnection>.fromOpaque(arg!).takeUnretainedValue()
            conn.worker.connectionClosed(conn)
        }, Unmanaged.passUnretained(conn).toOpaque())
        return conn
    }

    private func connectionClosed(_ conn: ClientConnection) {
        conn.closed = true
        disarmHeaderTimer(conn)
        conn.releaseTimers()
        connections[conn.evcon] = nil
        if conn.counted { acceptor.closed() }
        shared.metrics.connectionClosed(worker: index)
        conn.current?.clientGone()
        conn.current = nil
        if let waiting = conn.keyWait { keyWaitClientGone(waiting) }
    }
}

/// A client connection's state across its keep-alive requests.
final class ClientConnection {
    let evcon: OpaquePointer
    /// Not weak: a weak reference moves the worker's reference count to a side table, and
    /// every retain and release of the worker (many per request) then takes the slow path.
    /// A worker outlives its connections (it lives as long as the process).
    unowned(unsafe) let worker: Worker
    /// The peer's address, read once per connection.
    lazy var peer: String = {
        var address: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(evcon, &address, &port)
        return address.map { String(cString: $0) } ?? ""
    }()
    /// The exchange in flight on this connection, if any.
    var current: ProxyExchange?
    /// The request of this connection waiting for keys, if any (Worker+KeyWait.swift).
    var keyWait: KeyWaitEntry?
    /// evhttp has freed the connection (`evcon` is gone).
    var closed = false
    /// Counted by the worker's acceptor (which then hears of its close).
    var counted = false
    /// The connection speaks TLS (its bufferevent is OpenSSL's).
    let isTLS: Bool
    /// `server.header_timeout` for the head being read (Worker+RequestHeadGuard).
    var headTimer: OpaquePointer?
    var headTimerArmed = false
    /// The request's refusal, decided on its head before its body (Worker+RequestHeadGuard).
    var earlyRefusal: EarlyRefusal?
    /// The request's facts and snapshot, from its head, when it was decided before its body
    /// and not refused: `handle` decides on them again (Worker+RequestHeadGuard).
    var decidedHead: DecidedHead?
    /// The end of a lingering close (Worker+ClientIO), and the bytes discarded meanwhile.
    var lingerTimer: OpaquePointer?
    var lingerBytes = 0
    /// The last `Authorization` value this connection sent (``AuthorizationMemo``).
    var lastAuthorization: String? = nil
    init(evcon: OpaquePointer, worker: Worker) {
        self.evcon = evcon
        self.worker = worker
        isTLS = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)) != nil
    }
}

extension ClientConnection {
    /// Frees this connection's timers (it is closing).
    func releaseTimers() {
        if let headTimer { event_free(headTimer) }
        if let lingerTimer { event_free(lingerTimer) }
        headTimer = nil
        lingerTimer = nil
    }
}

final class DeferredWork {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

struct ServerError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
