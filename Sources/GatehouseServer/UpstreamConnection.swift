import CLibevent
import Glibc

/// Why an upstream exchange failed, as its connection saw it.
enum UpstreamFailure {
    /// The connection could not be made (refused, unreachable).
    case connectFailed
    /// `connect_timeout` passed before the connection was made.
    case connectTimeout
    /// `timeout` passed waiting for the head or between body bytes.
    case timeout
    /// The connection closed or broke; `beforeResponse` when no byte of a response came.
    case closed(beforeResponse: Bool)
    /// The upstream's bytes are not a valid HTTP/1.1 response.
    case badResponse
}

/// One kept-alive HTTP/1.1 connection to an upstream target, on a raw non-blocking socket.
///
/// The read event (`EV_READ|EV_PERSIST`) is registered once for the connection's life, also
/// while it is idle in its pool: a close (or stray bytes) while idle is seen at once and the
/// connection dropped. A request is written at once with `writev`; a write event is added only
/// when the socket's buffer is full. One timer serves `connect_timeout` while connecting and
/// `timeout` (silence while a response is awaited) after.
///
/// An `https://` target gets TLS on the same socket (`ssl`): the handshake runs inside the
/// write and read paths, requests always go through `output`, and a read drains what OpenSSL
/// holds decrypted before waiting for the socket again.
///
/// Threading: everything happens on the worker's loop that owns the pool.
final class UpstreamConnection {
    private let fd: Int32
    /// TLS for an `https://` target; nil for plain HTTP.
    private var ssl: OpaquePointer?
    /// The TLS handshake is done (always, for plain HTTP).
    private var secured = true
    /// Safe unowned: an idle connection is owned by its pool, a busy one by an exchange that
    /// holds the pool, and a released one is closed (its events freed) or idle again.
    private unowned(unsafe) let pool: TargetPool
    private var readEvent: OpaquePointer?
    private var writeEvent: OpaquePointer?
    private var timer: OpaquePointer?
    private let output: OpaquePointer
    private let parser = UpstreamResponseParser()
    private var connected = false
    private var writing = false
    private var paused = false
    private var timeoutMs: Int64 = 0
    /// The exchange this connection serves now; nil while idle.
    private var owner: ProxyExchange?
    /// False once the connection must not carry another request.
    private(set) var reusable = true
    /// True after at least one complete response: a close before the next is a stale close.
    private(set) var carriedRequest = false

    /// Opens a socket and starts a non-blocking connect to `address`.
    init(pool: TargetPool, address: UnsafePointer<sockaddr>, length: socklen_t) {
        self.pool = pool
        output = evbuffer_new()!
        fd = socket(Int32(address.pointee.sa_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { reusable = false; return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if connect(fd, address, length) == 0 {
            connected = true
        } else if errno != EINPROGRESS {
            reusable = false
            return
        }
        if pool.target.target.tls {
            guard let context = UpstreamTLS.shared.context,
                  let made = gh_ssl_client_on_fd(context, pool.target.target.host, fd) else {
                reusable = false
                return
            }
            ssl = made
            secured = false
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        readEvent = event_new(pool.base, fd, gh_ev_read() | gh_ev_persist(), { _, _, arg in
            let connection = Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue()
            withExtendedLifetime(connection) { connection.readable() }
        }, context)
        writeEvent = event_new(pool.base, fd, gh_ev_write() | gh_ev_persist(), { _, _, arg in
            let connection = Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue()
            withExtendedLifetime(connection) { connection.writable() }
        }, context)
        timer = gh_timer_new(pool.base, 0, { _, _, arg in
            let connection = Unmanaged<UpstreamConnection>.fromOpaque(arg!).takeUnretainedValue()
            withExtendedLifetime(connection) { connection.timerFired() }
        }, context)
        event_add(readEvent, nil)
    }

    deinit {
        close()
        evbuffer_free(output)
    }

    /// Sends a request: `head` then `body` (moved, or referenced when `keepBody` so that a retry
    /// can send it again). A failure may reach `exchange.upstreamFailed` from inside this call:
    /// the exchange sets its state before calling.
    func send(for exchange: ProxyExchange, head: UnsafeRawBufferPointer, body: OpaquePointer?, keepBody: Bool,
              isHead: Bool, upgrade: Bool = false, connectTimeoutMs: Int64, timeoutMs: Int64) {
        owner = exchange
        self.timeoutMs = timeoutMs
        parser.reset()
        parser.isHeadRequest = isHead
        parser.upgradeRequested = upgrade
        paused = false
        guard readEvent != nil else {
            // The socket could not even be made: report on the next turn.
            return failSoon(.connectFailed)
        }
        let hasBody = body.map { evbuffer_get_length($0) > 0 } ?? false
        if ssl == nil && connected && !hasBody && evbuffer_get_length(output) == 0 {
            // The common case: one send(2) of the head, no buffer chain. send and recv rather
            // than write and read: a socket call skips the file layer's checks (~0.1 µs each).
            let n = Glibc.send(fd, head.baseAddress, head.count, Int32(MSG_NOSIGNAL))
            if n == head.count {
                _ = gh_timer_add_ms(timer, timeoutMs)
                return
            }
            if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                return fail(.closed(beforeResponse: true))
            }
            let written = max(n, 0)
            evbuffer_add(output, head.baseAddress! + written, head.count - written)
            _ = gh_timer_add_ms(timer, timeoutMs)
            return flush()
        }
        evbuffer_add(output, head.baseAddress, head.count)
        if let body, evbuffer_get_length(body) > 0 {
            if keepBody { evbuffer_add_buffer_reference(output, body) } else { evbuffer_add_buffer(output, body) }
        }
        _ = gh_timer_add_ms(timer, connected ? timeoutMs : connectTimeoutMs)
        flush()
    }

    /// Stops reading while the client is slow (backpressure); `resume` reads again.
    func pause() {
        guard !paused, readEvent != nil else { return }
        paused = true
        event_del(readEvent)
        event_del(timer)
    }

    func resume() {
        guard paused, readEvent != nil else { return }
        paused = false
        event_add(readEvent, nil)
        _ = gh_timer_add_ms(timer, timeoutMs)
        // Bytes OpenSSL already decrypted make the socket no more readable: read them now.
        if let ssl, SSL_pending(ssl) > 0 { event_active(readEvent, Int32(gh_ev_read()), 0) }
    }

    /// The exchange is done with this connection (also when it gave up on it).
    func detach() {
        owner = nil
        if paused { paused = false; if readEvent != nil { event_add(readEvent, nil) } }
        if timer != nil { event_del(timer) }
        if !parser.isComplete || evbuffer_get_length(output) > 0 { reusable = false }
    }

    /// True when the socket holds bytes nobody asked for (or the upstream's close), or OpenSSL
    /// holds decrypted ones: such a connection must not carry another request (SPEC §3.2).
    /// One `recv(MSG_PEEK)`, taken when an idle connection is about to be reused.
    var hasPendingInput: Bool {
        guard !closed, readEvent != nil else { return true }
        if let ssl, SSL_pending(ssl) > 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return true
    }

    /// Closes the socket and frees its events (idempotent).
    func close() {
        reusable = false
        owner = nil
        for event in [readEvent, writeEvent, timer] where event != nil { event_free(event) }
        readEvent = nil
        writeEvent = nil
        timer = nil
        if let ssl {
            SSL_free(ssl)
            self.ssl = nil
        }
        if fd >= 0 && !closed {
            closed = true
            Glibc.close(fd)
        }
    }

    private var closed = false

    /// Gives the socket (and its TLS state) away to a WebSocket tunnel after a `101`: the
    /// connection's events are freed, the socket is not closed, and the connection counts as
    /// closed for its pool. Nil when the socket is already gone. `decrypted`: bytes OpenSSL
    /// already holds decrypted (the socket will not signal them again).
    func handOff() -> (fd: Int32, ssl: OpaquePointer?, decrypted: [UInt8])? {
        guard fd >= 0, !closed, readEvent != nil else { return nil }
        var decrypted: [UInt8] = []
        if let ssl {
            while SSL_pending(ssl) > 0 {
                var chunk = [UInt8](repeating: 0, count: Int(SSL_pending(ssl)))
                let n = SSL_read(ssl, &chunk, Int32(chunk.count))
                if n <= 0 { break }
                decrypted += chunk[0..<Int(n)]
            }
        }
        let handed = (fd, ssl, decrypted)
        ssl = nil
        closed = true
        close()
        return handed
    }

    // MARK: writing

    private func flush() {
        if let ssl { return flushTLS(ssl) }
        while evbuffer_get_length(output) > 0 {
            let n = evbuffer_write(output, fd)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                    if errno == EINTR { continue }
                    if !writing { writing = true; event_add(writeEvent, nil) }
                    return
                }
                return fail(connected ? .closed(beforeResponse: parser.isEmpty) : .connectFailed)
            }
            if !connected {
                connected = true
                _ = gh_timer_add_ms(timer, timeoutMs)
            }
        }
        if writing { writing = false; event_del(writeEvent) }
    }

    private func writable() {
        if !connected {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0 {
                return fail(.connectFailed)
            }
            connected = true
        }
        // Progress on a slow write counts as activity for `timeout`.
        _ = gh_timer_add_ms(timer, timeoutMs)
        flush()
        // OpenSSL may have wanted to write in the middle of a read.
        if ssl != nil, secured, readEvent != nil, !paused { readable() }
    }

    // MARK: reading

    private func readable() {
        if let ssl { return readableTLS(ssl) }
        let buffer = pool.readBuffer
        let n = recv(fd, buffer.baseAddress, buffer.count, 0)
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { return }
        guard let exchange = owner else {
            // Idle: the upstream closed it, or sent bytes nobody asked for. Either way it goes.
            close()
            pool.dropIdle(self)
            return
        }
        defer { exchange.flushClient() }
        if n < 0 {
            return fail(connected ? .closed(beforeResponse: parser.isEmpty) : .connectFailed)
        }
        if !connected {
            connected = true
        }
        if n == 0 {
            reusable = false
            if parser.finishAtClose() { return complete() }
            return fail(.closed(beforeResponse: parser.isEmpty))
        }
        _ = gh_timer_add_ms(timer, timeoutMs)
        deliver(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<n]))
    }

    /// Feeds the parser and hands head, body and end to the owner, while it stays the owner.
    private func deliver(_ input: UnsafeRawBufferPointer) {
        guard let exchange = owner else { return }
        var offset = 0
        while owner === exchange {
            switch parser.next(input, &offset) {
            case .needMore:
                return
            case .head:
                if parser.upgraded {
                    // 101 to an upgrade: the rest of this read is the upstream's first tunnel bytes.
                    let rest = UnsafeRawBufferPointer(rebasing: input[offset..<input.count])
                    owner = nil
                    event_del(timer)
                    return exchange.upstreamSwitched(self, parser, leftover: rest)
                }
                if !exchange.upstreamHead(parser) {
                    // The exchange refused the head (it was invalid for the gateway).
                    return fail(.badResponse)
                }
            case .body(let bytes):
                exchange.upstreamBody(bytes)
            case .done:
                // Bytes after the response (here, or already decrypted by OpenSSL) belong to no
                // request: the connection must not carry another.
                if offset < input.count || !parser.keepAlive { reusable = false }
                if let ssl, SSL_pending(ssl) > 0 { reusable = false }
                return complete()
            case .bad:
                return fail(.badResponse)
            }
        }
    }

    private func complete() {
        guard let exchange = owner else { return }
        carriedRequest = true
        owner = nil
        event_del(timer)
        exchange.upstreamComplete(self)
    }

    private func timerFired() {
        fail(connected && secured ? .timeout : .connectTimeout)
    }

    private func fail(_ failure: UpstreamFailure) {
        let exchange = owner
        close()
        exchange?.upstreamFailed(failure)
    }

    private func failSoon(_ failure: UpstreamFailure) {
        reusable = false
        pool.later { [self] in
            let exchange = owner
            owner = nil
            exchange?.upstreamFailed(failure)
        }
    }

    // MARK: TLS (https:// targets)

    private func setWriting(_ on: Bool) {
        guard on != writing, writeEvent != nil else { return }
        writing = on
        if on { event_add(writeEvent, nil) } else { event_del(writeEvent) }
    }

    /// Handshake first (a certificate that does not verify is a failed connect), then `output`
    /// through `SSL_write`, a contiguous piece at a time.
    private func flushTLS(_ ssl: OpaquePointer) {
        if !secured {
            ERR_clear_error()  // SSL_get_error reads this thread's queue: it must start empty
            let result = SSL_do_handshake(ssl)
            guard result == 1 else {
                switch SSL_get_error(ssl, result) {
                case SSL_ERROR_WANT_READ: setWriting(false)
                case SSL_ERROR_WANT_WRITE: setWriting(true)
                default:
                    pool.noteTLSFailure(Self.handshakeFailure(ssl))
                    fail(.connectFailed)
                }
                return
            }
            secured = true
            connected = true
            _ = gh_timer_add_ms(timer, timeoutMs)
        }
        while evbuffer_get_length(output) > 0 {
            var piece = iovec()
            guard evbuffer_peek(output, -1, nil, &piece, 1) >= 1, let start = piece.iov_base else { break }
            ERR_clear_error()
            let result = SSL_write(ssl, start, Int32(min(piece.iov_len, 1 << 30)))
            if result > 0 {
                evbuffer_drain(output, Int(result))
                continue
            }
            switch SSL_get_error(ssl, result) {
            case SSL_ERROR_WANT_WRITE: setWriting(true)
            case SSL_ERROR_WANT_READ: setWriting(false)  // readable() flushes again
            default: fail(.closed(beforeResponse: parser.isEmpty))
            }
            return
        }
        setWriting(false)
    }

    /// Why a handshake failed, for the operator: the certificate check's verdict when that was
    /// it, else OpenSSL's reason.
    private static func handshakeFailure(_ ssl: OpaquePointer) -> String {
        let verdict = SSL_get_verify_result(ssl)
        if verdict != X509_V_OK, let text = X509_verify_cert_error_string(verdict) {
            return "certificate: \(String(cString: text))"
        }
        if let reason = ERR_reason_error_string(ERR_peek_error()) { return String(cString: reason) }
        return "the connection closed during the handshake"
    }

    /// Everything OpenSSL can give now (it may hold decrypted bytes the socket no longer
    /// signals), handed on as the plain path does; a close (with or without close_notify) is
    /// the end of the stream.
    private func readableTLS(_ ssl: OpaquePointer) {
        if !secured || evbuffer_get_length(output) > 0 {
            flushTLS(ssl)
            guard secured, self.ssl != nil else { return }
        }
        guard !paused else { return }
        let exchange = owner
        defer { exchange?.flushClient() }
        let buffer = pool.readBuffer
        while true {
            ERR_clear_error()
            let n = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
            if n > 0 {
                guard let exchange, owner === exchange else {
                    // Bytes nobody asked for (idle).
                    close()
                    if owner == nil { pool.dropIdle(self) }
                    return
                }
                _ = gh_timer_add_ms(timer, timeoutMs)
                deliver(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<Int(n)]))
                // The exchange may have ended and the connection been closed (`ssl` freed).
                guard self.ssl != nil, owner === exchange else { return }
                if paused { return }  // resume() reads what OpenSSL still holds
                continue
            }
            switch SSL_get_error(ssl, n) {
            case SSL_ERROR_WANT_READ:
                return  // e.g. a TLS 1.3 session ticket on an idle connection: nothing to do
            case SSL_ERROR_WANT_WRITE:
                setWriting(true)
                return
            default:
                guard owner != nil else {
                    close()
                    pool.dropIdle(self)
                    return
                }
                reusable = false
                if parser.finishAtClose() { return complete() }
                return fail(.closed(beforeResponse: parser.isEmpty))
            }
        }
    }
}

/// The TLS client context of every `https://` upstream connection: the system's trust store
/// (`SSL_CERT_FILE`/`SSL_CERT_DIR` as OpenSSL reads them), TLS 1.2 or newer. Made once,
/// immutable after, shared by every loop.
final class UpstreamTLS: @unchecked Sendable {
    static let shared = UpstreamTLS()
    let context: OpaquePointer?
    private init() { context = gh_ssl_client_ctx_new() }
}

