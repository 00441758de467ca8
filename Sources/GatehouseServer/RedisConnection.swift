import CHiredis
import CLibevent
import GatehouseSessions

/// One Redis reply, copied out of hiredis's `redisReply` (hiredis frees that as soon as the
/// reply callback returns).
enum RedisReply: Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)

    init(_ reply: UnsafePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case gh_reply_string():
            self = .string(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: r.len)) } ?? [])
        case gh_reply_integer():
            self = .integer(r.integer)
        case gh_reply_array():
            var items: [RedisReply] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                items.append(r.element[i].map { RedisReply(UnsafePointer($0)) } ?? .null)
            }
            self = .array(items)
        case gh_reply_status():
            self = .status(r.str.map { String(cString: $0) } ?? "")
        case gh_reply_error():
            self = .error(r.str.map { String(cString: $0) } ?? "ERR")
        default:
            self = .null
        }
    }

    /// The text of a bulk string; nil for anything else.
    var text: String? {
        if case .string(let bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
}

/// A pipelined connection to one Redis server through hiredis 0.14 on one event loop: the only
/// Swift file that touches a `redisAsyncContext`.
///
/// - Connects at once, then sends `AUTH` and `SELECT` when configured and a `PING`, ahead of
///   any command (Redis answers in order, so later commands run authenticated).
/// - Every command completes exactly once: with its reply (an error reply included), with
///   `.timeout` when no reply came within `commandTimeoutMs` (hiredis 0.14 has no async
///   timeouts: each command arms its own evtimer; a late reply is then dropped), or with
///   `.unavailable` when the connection is down, is lost, or is closed.
/// - Down means fail fast: no queueing while disconnected. It reconnects by itself after
///   100 ms, doubling to 2 s, and back to 100 ms once a handshake succeeds. A connect that
///   takes longer than `connectTimeoutMs`, a failed handshake, or three command timeouts in a
///   row with no reply in between (a hung server) drop the connection and start over.
///
/// Lifetimes (the fragile part of hiredis): hiredis owns the context and frees it right after
/// the connect callback reports failure or the disconnect callback returns, and calls each
/// pending command's callback with a NULL reply first; this class never touches a context
/// after that. A command's ``PendingCommand`` is retained as hiredis privdata until its
/// reply callback. The context's `data` points at this object unretained: ``close()`` (also
/// run by `deinit`) clears it and the connect/disconnect callbacks before freeing the context.
///
/// Threading: every method and every completion runs on the thread of `base`'s loop. Not
/// thread-safe.
final class RedisConnection {
    private enum State {
        /// No context; the reconnect timer is armed.
        case disconnected
        /// TCP connect in progress; commands are accepted (hiredis buffers them, bounded by
        /// their timeouts).
        case connecting(UnsafeMutablePointer<redisAsyncContext>)
        case connected(UnsafeMutablePointer<redisAsyncContext>)
        case closed

        var context: UnsafeMutablePointer<redisAsyncContext>? {
            switch self {
            case .connecting(let ctx), .connected(let ctx): return ctx
            case .disconnected, .closed: return nil
            }
        }
    }

    let host: String
    let port: UInt16
    let db: Int
    let commandTimeoutMs: Int64
    let connectTimeoutMs: Int64
    private let password: String?
    private let base: OpaquePointer
    private var state: State = .disconnected
    private var retryTimer: OpaquePointer?
    private var connectTimer: OpaquePointer?
    private var backoffMs: Int64 = RedisConnection.firstBackoffMs
    private var consecutiveTimeouts = 0
    private var handshakeDone = false
    private var reportedDown = false
    /// Where connection changes are reported (lost, back, refused credentials). Never given a
    /// password or a session id.
    var log: (String) -> Void = { _ in }

    static let firstBackoffMs: Int64 = 100
    static let maxBackoffMs: Int64 = 2_000
    static let timeoutsBeforeDrop = 3

    /// Starts connecting to `host:port` on `base` at once.
    init(base: OpaquePointer, host: String, port: UInt16, db: Int, password: String?,
         commandTimeoutMs: Int64, connectTimeoutMs: Int64? = nil) {
        self.base = base
        self.host = host
        self.port = port
        self.db = db
        self.password = password.flatMap { $0.isEmpty ? nil : $0 }
        self.commandTimeoutMs = max(1, commandTimeoutMs)
        self.connectTimeoutMs = connectTimeoutMs ?? max(1_000, commandTimeoutMs)
        let me = Unmanaged.passUnretained(self).toOpaque()
        retryTimer = gh_timer_new(base, 0, { _, _, arg in
            Unmanaged<RedisConnection>.fromOpaque(arg!).takeUnretainedValue().connect()
        }, me)
        connectTimer = gh_timer_new(base, 0, { _, _, arg in
            Unmanaged<RedisConnection>.fromOpaque(arg!).takeUnretainedValue().connectTimedOut()
        }, me)
        connect()
    }

    deinit { close() }

    /// True once the handshake (AUTH, SELECT, PING) has been answered on the current connection.
    var isConnected: Bool {
        if case .connected = state { return handshakeDone }
        return false
    }

    /// Stops for good: frees the connection (pending commands complete with `.unavailable`)
    /// and the timers. Later commands fail at once. Idempotent.
    func close() {
        if case .closed = state { return }
        let ctx = state.context
        state = .closed
        for timer in [retryTimer, connectTimer] { if let timer { event_free(timer) } }
        retryTimer = nil
        connectTimer = nil
        if let ctx { gh_redis_free_silently(ctx) }
    }

    /// Sends one command (binary-safe arguments, no format string); `completion` runs exactly
    /// once, possibly before this returns (when the connection is down).
    func send(_ arguments: [String], completion: @escaping (Result<RedisReply, SessionStoreError>) -> Void) {
        guard let ctx = state.context else {
            if case .closed = state { return completion(.failure(.unavailable("redis store closed"))) }
            return completion(.failure(.unavailable("redis \(host):\(port) not connected")))
        }
        let command = PendingCommand(connection: self, context: ctx, completion: completion)
        let privdata = Unmanaged.passRetained(command).toOpaque()
        let status = Self.withArgv(arguments) { argc, argv, lengths in
            redisAsyncCommandArgv(ctx, redisReplyCallback, privdata, argc, argv, lengths)
        }
        guard status == gh_redis_ok() else {
            // Refused (the context is being torn down): hiredis will never call back.
            Unmanaged<PendingCommand>.fromOpaque(privdata).release()
            return completion(.failure(.unavailable("redis connection closing")))
        }
        // hiredis calls back only from the loop, never inside redisAsyncCommandArgv, so the
        // timer can be armed after the command is queued.
        command.timer = gh_timer_new(base, 0, { _, _, arg in
            let command = Unmanaged<PendingCommand>.fromOpaque(arg!).takeUnretainedValue()
            withExtendedLifetime(command) { command.timedOut() }
        }, privdata)
        _ = gh_timer_add_ms(command.timer, commandTimeoutMs)
    }

    /// Calls `body` with C argv/argvlen arrays for `arguments` (valid during the call only:
    /// hiredis copies them into its output buffer).
    private static func withArgv<R>(_ arguments: [String],
                                    _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        var lengths: [Int] = []
        for argument in arguments {
            offsets.append(bytes.count)
            bytes.append(contentsOf: argument.utf8)
            lengths.append(bytes.count - offsets[offsets.count - 1])
        }
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                var argv: [UnsafePointer<CChar>?] = offsets.map { UnsafePointer(chars.baseAddress! + $0) }
                return argv.withUnsafeMutableBufferPointer { argvBuffer in
                    lengths.withUnsafeBufferPointer { body(Int32(arguments.count), argvBuffer.baseAddress!, $0.baseAddress!) }
                }
            }
        }
    }

    // MARK: connection life

    private func connect() {
        guard case .disconnected = state else { return }
        var error = [CChar](repeating: 0, count: 256)
        guard let ctx = gh_redis_connect(base, host, Int32(port), &error, error.count) else {
            let why = error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            reportDown("cannot connect to redis \(host):\(port): \(why)")
            return scheduleReconnect()
        }
        ctx.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        _ = redisAsyncSetConnectCallback(ctx, redisConnectCallback)
        _ = redisAsyncSetDisconnectCallback(ctx, redisDisconnectCallback)
        state = .connecting(ctx)
        handshakeDone = false
        consecutiveTimeouts = 0
        _ = gh_timer_add_ms(connectTimer, connectTimeoutMs)
        sendHandshake(on: ctx)
    }

    private func sendHandshake(on ctx: UnsafeMutablePointer<redisAsyncContext>) {
        var steps: [(name: String, arguments: [String])] = []
        if let password { steps.append(("AUTH", ["AUTH", password])) }
        if db != 0 { steps.append(("SELECT", ["SELECT", String(db)])) }
        steps.append(("PING", ["PING"]))
        for (index, step) in steps.enumerated() {
            let last = index == steps.count - 1
            send(step.arguments) { [weak self] result in
                guard let self, self.state.context == ctx else { return }
                switch result {
                case .success(.error(let message)):
                    self.drop("redis \(self.host):\(self.port) refused \(step.name): \(message)")
                case .failure(let error) where error == .timeout():
                    self.drop("redis \(self.host):\(self.port) did not answer \(step.name) in time")
                case .success where last:
                    self.handshakeDone = true
                    self.backoffMs = Self.firstBackoffMs
                    if self.reportedDown { self.log("redis \(self.host):\(self.port) connected") }
                    self.reportedDown = false
                default:
                    break
                }
            }
        }
    }

    /// hiredis: the TCP connect finished (`ok`) or failed (hiredis frees `ctx` right after).
    fileprivate func connectFinished(_ ctx: UnsafeMutablePointer<redisAsyncContext>, ok: Bool) {
        guard state.context == ctx else { return }
        if ok {
            state = .connected(ctx)
            event_del(connectTimer)
        } else {
            contextGone(ctx, "cannot connect to redis \(host):\(port): \(Self.reason(ctx))")
        }
    }

    /// hiredis is freeing `ctx` (connection lost, or failed): forget it and try again later.
    /// Detaches it first: should a completion run during the teardown release the last
    /// reference to this object, hiredis must not call back into it afterwards.
    fileprivate func contextGone(_ ctx: UnsafeMutablePointer<redisAsyncContext>, _ why: String) {
        guard state.context == ctx else { return }
        gh_redis_detach(ctx)
        state = .disconnected
        handshakeDone = false
        event_del(connectTimer)
        reportDown(why)
        scheduleReconnect()
    }

    /// Frees the current context ourselves: pending commands complete with `.unavailable`.
    private func drop(_ why: String) {
        guard let ctx = state.context else { return }
        state = .disconnected
        handshakeDone = false
        event_del(connectTimer)
        reportDown(why)
        gh_redis_free_silently(ctx)
        scheduleReconnect()
    }

    private func connectTimedOut() {
        if case .connecting = state { drop("connecting to redis \(host):\(port) timed out") }
    }

    private func scheduleReconnect() {
        guard case .disconnected = state else { return }
        _ = gh_timer_add_ms(retryTimer, backoffMs)
        backoffMs = min(backoffMs * 2, Self.maxBackoffMs)
    }

    private func reportDown(_ why: String) {
        if !reportedDown { log(why) }
        reportedDown = true
    }

    /// hiredis's error text for a context that is going away.
    fileprivate static func reason(_ ctx: UnsafeMutablePointer<redisAsyncContext>) -> String {
        let text = String(cString: gh_redis_errstr(ctx))
        return text.isEmpty ? "connection closed" : text
    }

    // MARK: from commands

    fileprivate func replyArrived() {
        consecutiveTimeouts = 0
    }

    fileprivate func commandTimedOut(on ctx: UnsafeMutablePointer<redisAsyncContext>) {
        guard state.context == ctx else { return }
        consecutiveTimeouts += 1
        if consecutiveTimeouts >= Self.timeoutsBeforeDrop {
            drop("redis \(host):\(port) stopped answering (\(consecutiveTimeouts) commands timed out)")
        }
    }
}

/// One command in flight: hiredis privdata, retained from `redisAsyncCommandArgv` until its
/// reply callback, and the owner of the command's timeout timer (freed in that callback, so
/// the timer never outlives it).
private final class PendingCommand {
    weak var connection: RedisConnection?
    /// The context the command went to: compared, never dereferenced (it is alive whenever
    /// this command's timer or reply callback runs).
    let context: UnsafeMutablePointer<redisAsyncContext>
    private var completion: ((Result<RedisReply, SessionStoreError>) -> Void)?
    var timer: OpaquePointer?

    init(connection: RedisConnection, context: UnsafeMutablePointer<redisAsyncContext>,
         completion: @escaping (Result<RedisReply, SessionStoreError>) -> Void) {
        self.connection = connection
        self.context = context
        self.completion = completion
    }

    private func finish(_ result: Result<RedisReply, SessionStoreError>) {
        guard let completion else { return }
        self.completion = nil
        completion(result)
    }

    func timedOut() {
        guard completion != nil else { return }
        finish(.failure(.timeout("no reply from redis in \(connection?.commandTimeoutMs ?? 0) ms")))
        connection?.commandTimedOut(on: context)
    }

    /// The reply, or nil when hiredis is freeing the context (lost, failed or closed).
    func replied(_ reply: UnsafeMutablePointer<redisReply>?) {
        if let timer { event_free(timer) }
        timer = nil
        guard let reply else {
            // Move the connection on before completing, so that a completion sending a new
            // command fails fast instead of reaching the dying context.
            connection.map { $0.contextGone(context, "lost the connection to redis \($0.host):\($0.port): \(RedisConnection.reason(context))") }
            return finish(.failure(.unavailable("redis connection lost")))
        }
        connection?.replyArrived()
        finish(.success(RedisReply(reply)))
    }
}

// hiredis callbacks: they capture nothing and find their owner through the context's `data`
// or the command's privdata.

private let redisReplyCallback: @convention(c) (UnsafeMutablePointer<redisAsyncContext>?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, reply, privdata in
    let command = Unmanaged<PendingCommand>.fromOpaque(privdata!).takeRetainedValue()
    command.replied(reply?.assumingMemoryBound(to: redisReply.self))
}

private let redisConnectCallback: @convention(c) (UnsafePointer<redisAsyncContext>?, Int32) -> Void = { ac, status in
    guard let ac, let owner = ac.pointee.data else { return }
    Unmanaged<RedisConnection>.fromOpaque(owner).takeUnretainedValue()
        .connectFinished(UnsafeMutablePointer(mutating: ac), ok: status == gh_redis_ok())
}

private let redisDisconnectCallback: @convention(c) (UnsafePointer<redisAsyncContext>?, Int32) -> Void = { ac, _ in
    guard let ac, let owner = ac.pointee.data else { return }
    let ctx = UnsafeMutablePointer(mutating: ac)
    let connection = Unmanaged<RedisConnection>.fromOpaque(owner).takeUnretainedValue()
    connection.contextGone(ctx, "lost the connection to redis \(connection.host):\(connection.port): \(RedisConnection.reason(ctx))")
}
