import CLibevent
import Glibc
import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehousePolicy

/// One forwarded request: picks a target, sends the request on a pooled connection, streams
/// the response back with backpressure, and ends with exactly one access-log line.
///
/// Threading: lives on its worker's loop. It keeps itself alive (one retain) from `start()` to
/// `finish()`; evhttp callbacks reach it through that unretained pointer.
final class ProxyExchange {
    private unowned let worker: Worker
    private var clientRequest: Request?
    private let route: Route
    private let upstream: UpstreamSettings
    private let target: NormalizedTarget
    private let host: String?
    private let identity: Identity?
    /// CORS headers for the response (nil: no CORS policy applies, the upstream's pass as they are).
    private let cors: [(String, String)]?
    private var log: AccessLogRecord
    private let startNs: UInt64
    private let connection: ClientConnection
    private let method: evhttp_cmd_type

    private enum State { case waiting, sent, streaming, done }
    private var state = State.waiting
    private var pool: TargetPool?
    private var evcon: OpaquePointer?
    private var upstreamRequest: Request?
    private var reused = false
    private var retriedStale = false
    private var triedNextTarget = false
    private var upstreamError: evhttp_request_error?
    private var sentNs: UInt64 = 0
    private var connectTimer: OpaquePointer?
    private var paused = false
    private var selfRetain: Unmanaged<ProxyExchange>?

    /// Client output above this pauses reading from the upstream (SPEC §7.1: streamed, bounded).
    static let highWater = 256 * 1024

    init(worker: Worker, request: Request, route: Route, upstream: UpstreamSettings, target: NormalizedTarget,
         host: String?, identity: Identity?, cors: [(String, String)]?, log: AccessLogRecord, startNs: UInt64,
         connection: ClientConnection) {
        self.identity = identity
        self.cors = cors
        self.worker = worker
        self.clientRequest = request
        self.route = route
        self.upstream = upstream
        self.target = target
        self.host = host
        self.log = log
        self.startNs = startNs
        self.connection = connection
        self.method = evhttp_request_get_command(request)
    }

    private var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    private var isIdempotent: Bool {
        switch method {
        case EVHTTP_REQ_GET, EVHTTP_REQ_HEAD, EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS: return true
        default: return false
        }
    }

    func start() {
        selfRetain = Unmanaged.passRetained(self)
        worker.inFlight += 1
        connection.current = self
        guard let pool = worker.pickTarget(upstream) else {
            return fail(.serviceUnavailable, .upstreamDown)
        }
        use(pool)
    }

    private func use(_ pool: TargetPool) {
        self.pool = pool
        if let evcon = pool.takeIdle() { return send(on: evcon, reused: true) }
        if let (evcon, reused) = pool.acquire({ [weak self] evcon in
            guard let self, self.state == .waiting else { pool.release(evcon, reusable: true); return }
            self.send(on: evcon, reused: true)
        }) {
            send(on: evcon, reused: reused)
        }
    }

    // MARK: sending

    private func send(on evcon: OpaquePointer, reused: Bool) {
        guard let creq = clientRequest else { return }
        self.evcon = evcon
        self.reused = reused
        let ureq = evhttp_request_new({ req, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().upstreamDone(req)
        }, context)!
        upstreamRequest = ureq
        evhttp_request_set_header_cb(ureq, { req, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().upstreamHead(req!)
        })
        evhttp_request_set_chunked_cb(ureq, { req, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().upstreamChunk(req!)
        })
        evhttp_request_set_error_cb(ureq, { error, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().upstreamError = error
        })
        copyRequestHeaders(from: creq, to: ureq)
        let body = evhttp_request_get_input_buffer(creq)
        let bodyLength = evbuffer_get_length(body)
        if bodyLength > 0 {
            // Keep the client's bytes while a retry is still possible; otherwise move them.
            if isIdempotent && !retriedStale {
                evbuffer_add_buffer_reference(evhttp_request_get_output_buffer(ureq), body)
            } else {
                evbuffer_add_buffer(evhttp_request_get_output_buffer(ureq), body)
            }
        }
        var uri = target.path
        if let query = target.query { uri += "?" + query }
        state = .sent
        sentNs = Clock.monotonicNs()
        if evhttp_make_request(evcon, ureq, method, uri) != 0 {
            upstreamRequest = nil
            releaseConnection(reusable: false)
            return fail(.badGateway, .upstreamError)
        }
        if !reused { armConnectTimer() }
    }

    /// SPEC §7.1: the client's headers minus hop-by-hop ones, spoofed identity headers and what
    /// the gateway sets itself; plus Host, X-Forwarded-*, X-Request-Id.
    private func copyRequestHeaders(from creq: Request, to ureq: Request) {
        let input = HeaderList(evhttp_request_get_input_headers(creq))
        let output = HeaderList(evhttp_request_get_output_headers(ureq))
        let named = HeaderRules.connectionTokens(input.joined("Connection"))
        let strip = route.stripAuthorization
        let identityNames = worker.snapshot.config.identityHeaders.allNames
        let sessionCookie = worker.snapshot.sessions?.settings.cookie
        input.forEach { name, value in
            if let sessionCookie, HeaderRules.nameEquals(name, "cookie") {
                // The gateway's own cookie never reaches the upstream (SPEC §5.3); other cookies do.
                if let rest = sessionCookie.strippingSelf(fromCookieHeader: String(cString: value)) {
                    output.add("Cookie", rest)
                }
                return
            }
            if HeaderRules.isXAuth(name) { return }
            for dropped in ProxyExchange.requestDropped where HeaderRules.nameEquals(name, dropped) { return }
            for dropped in identityNames where HeaderRules.nameEqualsFoldingUnderscore(name, dropped) { return }
            if strip && HeaderRules.nameEquals(name, "authorization") { return }
            for token in named where HeaderRules.nameEquals(name, token) { return }
            evhttp_add_header(output.queue, name, value)
        }
        let originalHost = host
        if upstream.preserveHost, let originalHost {
            output.add("Host", originalHost)
        } else {
            output.add("Host", pool!.target.target.hostHeader)
        }
        let peer = worker.peerAddress(of: creq)
        let trusted = worker.snapshot.config.server.trustedProxies
        output.add("X-Forwarded-For", ForwardedFor.outgoing(peer: peer, incoming: input.joined("X-Forwarded-For"), trusted: trusted))
        output.add("X-Forwarded-Proto", "http")
        if let originalHost { output.add("X-Forwarded-Host", originalHost) }
        output.add("X-Request-Id", log.requestID)
        if let identity { addIdentityHeaders(identity, to: output) }
        let length = evbuffer_get_length(evhttp_request_get_input_buffer(creq))
        if length > 0 || method == EVHTTP_REQ_POST || method == EVHTTP_REQ_PUT || method == EVHTTP_REQ_PATCH {
            output.add("Content-Length", String(length))
        }
    }

    /// SPEC §2 `identity_headers`: subject, roles (comma-separated), method, extra claims.
    /// Values with control characters are left out rather than sent broken.
    private func addIdentityHeaders(_ identity: Identity, to output: HeaderList) {
        let names = worker.snapshot.config.identityHeaders
        func add(_ name: String, _ value: String) {
            if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) { output.add(name, value) }
        }
        if let subject = identity.subject { add(names.subject, subject) }
        // A role with a comma in it would read as two roles: it is left out of the header.
        add(names.roles, identity.roles.filter { !$0.contains(",") }.joined(separator: ","))
        add(names.method, identity.method.rawValue)
        if let token = identity.token {
            for (header, claim) in names.claims {
                if let value = token.claims.value(atPath: claim), let text = ProxyExchange.headerText(value) { add(header, text) }
            }
        }
    }

    /// A claim as a header value: strings as they are, numbers and booleans as JSON writes them,
    /// arrays of those comma-joined; objects are not sent.
    static func headerText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .number(let n): return n.description
        case .bool(let b): return b ? "true" : "false"
        case .array(let items):
            let parts = items.compactMap { item -> String? in
                if case .array = item { return nil }
                return headerText(item)
            }
            return parts.joined(separator: ",")
        default: return nil
        }
    }

    /// Request headers never copied as they are (lowercase).
    static let requestDropped: [String] = HeaderRules.hopByHop +
        ["host", "content-length", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"]

    /// Response headers never copied (lowercase); the gateway sets its own request id.
    static let responseDropped: [String] = HeaderRules.hopByHop + ["x-request-id"]

    // MARK: connect timeout

    /// libevent 2.1 has one timeout for connect and I/O; `connect_timeout` is ours.
    private func armConnectTimer() {
        connectTimer = gh_timer_new(worker.base, 0, { _, _, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().connectTimerFired()
        }, context)
        _ = gh_timer_add_ms(connectTimer, upstream.connectTimeoutMs)
    }

    private func cancelConnectTimer() {
        if let timer = connectTimer {
            event_free(timer)
            connectTimer = nil
        }
    }

    private func connectTimerFired() {
        cancelConnectTimer()
        guard state == .sent, let evcon else { return }
        let fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon))
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let connected = fd >= 0 && withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        if connected { return }
        if let ureq = upstreamRequest {
            upstreamRequest = nil
            state = .waiting
            evhttp_cancel_request(ureq)
        }
        pool?.recordConnectFailure()
        releaseConnection(reusable: false)
        if tryNextTarget() { return }
        fail(.gatewayTimeout, .upstreamTimeout)
    }

    // MARK: receiving

    private func upstreamHead(_ ureq: Request) -> Int32 {
        guard state == .sent, let creq = clientRequest else { return -1 }
        cancelConnectTimer()
        pool?.recordSuccess()
        let status = Int(evhttp_request_get_response_code(ureq))
        log.upstreamStatus = status
        log.upstreamMs = Double(Clock.monotonicNs() - sentNs) / 1_000_000
        let input = HeaderList(evhttp_request_get_input_headers(ureq))
        let output = HeaderList(evhttp_request_get_output_headers(creq))
        let named = HeaderRules.connectionTokens(input.joined("Connection"))
        let replaceCORS = cors != nil
        var contentLength: String? = nil
        var conflictingLength = false
        input.forEach { name, value in
            for dropped in ProxyExchange.responseDropped where HeaderRules.nameEquals(name, dropped) { return }
            if HeaderRules.nameEquals(name, "content-length") {
                // RFC 9112 §6.3: identical repeats collapse to one; different ones are a bad response.
                let v = String(cString: value)
                if let seen = contentLength {
                    if seen != v { conflictingLength = true }
                    return
                }
                contentLength = v
            }
            for token in named where HeaderRules.nameEquals(name, token) { return }
            if replaceCORS && HeaderRules.isCORSResponseHeader(name) { return }
            evhttp_add_header(output.queue, name, value)
        }
        if conflictingLength {
            evhttp_clear_headers(output.queue)
            retriedStale = true   // the same upstream would answer the same way: no retry
            return -1
        }
        output.add("X-Request-Id", log.requestID)
        for (name, value) in cors ?? [] { output.add(name, value) }
        if worker.draining { output.set("Connection", "close") }
        // evhttp would answer an HTTP/1.0 keep-alive client "Content-Length: 0" for a body of
        // unknown length: close such a connection instead, which delimits the body.
        if creq.pointee.minor == 0 && input["Content-Length"] == nil {
            HeaderList(evhttp_request_get_input_headers(creq)).remove("Connection")
        }
        state = .streaming
        log.status = status
        if let line = evhttp_request_get_response_code_line(ureq) {
            evhttp_send_reply_start(creq, Int32(status), line)
        } else {
            evhttp_send_reply_start(creq, Int32(status), Worker.reasonPhrase(status))
        }
        return 0
    }

    private func upstreamChunk(_ ureq: Request) {
        guard state == .streaming, let creq = clientRequest else { return }
        let buffer = evhttp_request_get_input_buffer(ureq)
        log.bytesSent += evbuffer_get_length(buffer)
        evhttp_send_reply_chunk_with_cb(creq, buffer, { _, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().clientDrained()
        }, context)
        if let cevcon = evhttp_request_get_connection(creq),
           evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(cevcon))) > ProxyExchange.highWater,
           let evcon {
            paused = true
            bufferevent_disable(evhttp_connection_get_bufferevent(evcon), gh_ev_read())
        }
    }

    /// The client took everything written so far: read from the upstream again.
    private func clientDrained() {
        guard paused, state == .streaming, let evcon else { return }
        paused = false
        bufferevent_enable(evhttp_connection_get_bufferevent(evcon), gh_ev_read())
    }

    /// evhttp's completion callback: `req` is nil or has no status when the exchange failed.
    private func upstreamDone(_ ureq: Request?) {
        guard state == .sent || state == .streaming else { return }
        upstreamRequest = nil
        cancelConnectTimer()
        let failed = ureq == nil || evhttp_request_get_response_code(ureq) == 0
        if !failed, state == .streaming {
            releaseConnection(reusable: true)
            if let creq = clientRequest {
                clientRequest = nil
                evhttp_send_reply_end(creq)
            }
            return finish()
        }
        releaseConnection(reusable: false)
        if state == .streaming {
            // Part of the body went out: the only honest signal left is to cut the connection.
            log.reason = upstreamError == EVREQ_HTTP_TIMEOUT ? .upstreamTimeout : .upstreamError
            log.decision = .error
            abortClient()
            return finish()
        }
        let connectFailed = ureq != nil && upstreamError == nil
        if reused && !retriedStale && isIdempotent && !connectFailed && upstreamError != EVREQ_HTTP_TIMEOUT, let pool {
            // A kept-alive connection the upstream closed while idle: once more, on a fresh one.
            retriedStale = true
            state = .waiting
            upstreamError = nil
            return send(on: pool.acquireFresh(), reused: false)
        }
        if connectFailed {
            pool?.recordConnectFailure()
            if tryNextTarget() { return }
            return fail(.badGateway, .upstreamConnectFailed)
        }
        if upstreamError == EVREQ_HTTP_TIMEOUT { return fail(.gatewayTimeout, .upstreamTimeout) }
        fail(.badGateway, .upstreamError)
    }

    /// SPEC §2: a failed connect is tried once on the next healthy target.
    private func tryNextTarget() -> Bool {
        guard !triedNextTarget, let next = worker.pickTarget(upstream, skipping: pool) else { return false }
        triedNextTarget = true
        state = .waiting
        upstreamError = nil
        use(next)
        return true
    }

    private func releaseConnection(reusable: Bool) {
        guard let evcon, let pool else { return }
        self.evcon = nil
        if paused {
            paused = false
            bufferevent_enable(evhttp_connection_get_bufferevent(evcon), gh_ev_read())
        }
        if reusable {
            pool.release(evcon, reusable: true)
        } else {
            // Not from inside evhttp's own callback on that connection: on the next turn.
            worker.later { pool.release(evcon, reusable: false) }
        }
    }

    // MARK: endings

    private func fail(_ error: GatewayError, _ reason: Reason) {
        guard let creq = clientRequest else { return finish() }
        clientRequest = nil
        // The route's CORS policy applies to its upstream failures too (none when it is off).
        worker.refuse(creq, error, reason, cors: cors ?? [], log: &log, startNs: startNs)
        finish(logged: true)
    }

    private func abortClient() {
        guard let creq = clientRequest else { return }
        clientRequest = nil
        state = .done
        if let cevcon = evhttp_request_get_connection(creq) {
            connection.current = nil
            evhttp_connection_free(cevcon)
        } else {
            evhttp_send_reply_end(creq)
        }
    }

    /// The client connection closed while this exchange was in flight.
    func clientGone() {
        guard state != .done else { return }
        if let ureq = upstreamRequest {
            upstreamRequest = nil
            state = .done
            evhttp_cancel_request(ureq)
        }
        cancelConnectTimer()
        releaseConnection(reusable: false)
        log.reason = .clientClosed
        log.decision = .error
        if let creq = clientRequest {
            clientRequest = nil
            evhttp_send_reply_end(creq)
        }
        finish()
    }

    private func finish(logged: Bool = false) {
        state = .done
        cancelConnectTimer()
        if !logged { worker.finishLog(&log, startNs: startNs) }
        if connection.current === self { connection.current = nil }
        worker.inFlight -= 1
        worker.exitIfDrained()
        selfRetain?.release()
        selfRetain = nil
    }
}
