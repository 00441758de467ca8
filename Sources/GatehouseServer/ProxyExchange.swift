import CLibevent
import Glibc
import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehousePolicy
import GatehouseDecision

/// One forwarded request: picks a target, sends the request on a pooled connection, streams
/// the response back with backpressure, and ends with exactly one access-log line.
///
/// Threading: lives on its worker's loop. It keeps itself alive (one retain) from `start()` to
/// `finish()`; evhttp callbacks reach it through that unretained pointer. The upstream side is
/// an `UpstreamConnection`, which calls `upstreamHead`, `upstreamBody`, `upstreamComplete` and
/// `upstreamFailed`.
final class ProxyExchange {
    /// unowned(unsafe): a worker outlives its exchanges, and a checked unowned reference costs
    /// an extra reference-count operation on every use.
    private unowned(unsafe) let worker: Worker
    private var clientRequest: Request?
    /// The snapshot the request was decided under: it is forwarded under the same one (SPEC §3),
    /// whatever the loop's current snapshot is by the time a connection is free.
    private let snapshot: Snapshot
    private let route: Route
    private let upstream: UpstreamSettings
    private let target: NormalizedTarget
    private let host: String?
    /// The identity headers the plan set (SPEC §7.1); empty for an anonymous caller.
    private let identityHeaders: IdentityHeaderBlock
    /// CORS headers for the response (nil: no CORS policy applies, the upstream's pass as they are).
    private let cors: [(String, String)]?
    private var log: AccessLogRecord
    private let startNs: UInt64
    private let connection: ClientConnection
    private let method: evhttp_cmd_type

    private enum State { case waiting, sent, streaming, done }
    private var state = State.waiting
    private var pool: TargetPool?
    private var upstreamConnection: UpstreamConnection?
    private var reused = false
    private var retriedStale = false
    private var triedNextTarget = false
    private var sentNs: UInt64 = 0
    private var paused = false
    /// The request head as written to the upstream (kept for a retry).
    /// The writer's storage and how many of its bytes are the head; nil until written.
    private var requestHead: (storage: [UInt8], count: Int)?
    private var selfRetain: Unmanaged<ProxyExchange>?
    /// A WebSocket handshake to tunnel (SPEC §12): its facts, kept for the tunnel's re-checks.
    let tunnelFacts: RequestFacts?
    /// The caller, for the tunnel's ends (token expiry, session).
    let identity: Identity?
    /// The client connection was handed to a tunnel: nothing here touches it any more.
    private(set) var tunnelled = false

    /// Client output above this pauses reading from the upstream (SPEC §7.1: streamed, bounded).
    static let highWater = 256 * 1024

    init(worker: Worker, request: Request, snapshot: Snapshot, forward: Forward, upstream: UpstreamSettings,
         target: NormalizedTarget, host: String?, log: consuming AccessLogRecord, startNs: UInt64, connection: ClientConnection,
         tunnelFacts: RequestFacts? = nil) {
        self.identityHeaders = forward.identityBlock
        self.tunnelFacts = forward.tunnel ? tunnelFacts : nil
        self.identity = forward.identity
        self.cors = forward.cors
        self.worker = worker
        self.clientRequest = request
        self.snapshot = snapshot
        self.route = forward.route
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
        worker.keepReadingClient(connection)
        guard let pool = worker.pickTarget(upstream, in: snapshot) else {
            return fail(.serviceUnavailable, .upstreamDown)
        }
        use(pool)
    }

    private func use(_ pool: TargetPool) {
        self.pool = pool
        if let connection = pool.takeIdle() { return send(on: connection, reused: true) }
        if let (connection, reused) = pool.acquire({ [weak self] connection in
            guard let self, self.state == .waiting else { pool.release(connection); return }
            self.send(on: connection, reused: connection.carriedRequest)
        }) {
            send(on: connection, reused: reused)
        }
    }

    // MARK: sending

    private func send(on connection: UpstreamConnection, reused: Bool) {
        guard let creq = clientRequest else { return }
        upstreamConnection = connection
        self.reused = reused
        let written = requestHead ?? writeRequestHead(for: creq)
        requestHead = written
        let body = evhttp_request_get_input_buffer(creq)
        state = .sent
        sentNs = Clock.monotonicNs()
        // The client's bytes stay where evhttp put them (a reference, not a copy): a retry on
        // a fresh connection or the next target sends them again.
        let keepBody = true
        written.storage.withUnsafeBytes { storage in
            let head = UnsafeRawBufferPointer(rebasing: storage[..<written.count])
            connection.send(for: self, head: head, body: body, keepBody: keepBody, isHead: method == EVHTTP_REQ_HEAD,
                            upgrade: tunnelFacts != nil, connectTimeoutMs: upstream.connectTimeoutMs, timeoutMs: upstream.timeoutMs)
        }
    }

    /// The request line and headers, for `requestHead`.
    /// SPEC §7.1: the client's headers minus hop-by-hop ones, spoofed identity headers and what
    /// the gateway sets itself; plus Host, X-Forwarded-*, X-Request-Id.
    private func writeRequestHead(for creq: Request) -> (storage: [UInt8], count: Int) {
        var out = RequestHeadWriter(capacity: 1024)
        out.append(ProxyExchange.methodName(method))
        out.append(" ")
        out.append(target.path)
        if let query = target.query {
            out.append("?")
            out.append(query)
        }
        out.append(" HTTP/1.1\r\n")
        let input = HeaderList(evhttp_request_get_input_headers(creq))
        let named = ConnectionTokens(input)  // more than 64 were refused with 400 (RequestHead)
        let strip = route.stripAuthorization
        let filter = snapshot.requestHeaderFilter
        let peer = connection.peer  // the client connection's address, formatted once per connection
        let trusted = snapshot.config.server.trustedProxies
        let trustedPeer = ProxyExchange.isTrusted(peer, trusted)
        let sessionCookie = snapshot.sessions?.settings.cookie
        input.forEach { name, value in
            if let sessionCookie, HeaderRules.nameEquals(name, constant: "cookie") {
                // The gateway's own cookie never reaches the upstream (SPEC §5.3); other cookies do.
                if let rest = sessionCookie.strippingSelf(fromCookieHeader: String(cString: value)) {
                    out.ownHeader("Cookie", rest)
                }
                return
            }
            if UpstreamHeaders.drops(name, filter: filter, trustedPeer: trustedPeer, stripAuthorization: strip,
                                     named: named) { return }
            out.clientHeader(name, value)
        }
        let originalHost = host
        if upstream.preserveHost, let originalHost {
            out.ownHeader("Host", originalHost)
        } else {
            out.ownHeader("Host", pool!.target.target.hostHeader)
        }
        if !log.client.isEmpty { out.ownHeader("X-Real-IP", log.client) }
        out.ownHeader("X-Forwarded-For", ForwardedFor.outgoing(peer: peer, incoming: input.joined("x-forwarded-for"), trusted: trusted))
        out.ownHeader("X-Forwarded-Proto", connection.isTLS ? "https" : "http")
        if let originalHost { out.ownHeader("X-Forwarded-Host", originalHost) }
        out.ownHeader("X-Request-Id", log.requestID)
        if !log.trace.isNone { out.traceparent(log.trace) }
        out.lines(identityHeaders)
        if tunnelFacts != nil {
            // Exactly these two of the hop-by-hop kind (SPEC §12); the Sec-WebSocket-* pass as they are.
            out.header("Connection", "Upgrade")
            out.header("Upgrade", "websocket")
        }
        let length = evbuffer_get_length(evhttp_request_get_input_buffer(creq))
        if length > 0 || method == EVHTTP_REQ_POST || method == EVHTTP_REQ_PUT || method == EVHTTP_REQ_PATCH {
            out.ownHeader("Content-Length", String(length))
        }
        out.append("\r\n")
        return out.finish()
    }

    /// The request method as sent upstream (only methods evhttp accepted reach here).
    static func methodName(_ method: evhttp_cmd_type) -> StaticString { Worker.methodToken(method) }

    /// SPEC §7.1: the peer is one of `server.trusted_proxies`.
    static func isTrusted(_ peer: String, _ trusted: [CIDR]) -> Bool {
        guard !trusted.isEmpty, let address = IPAddress(peer) else { return false }
        return trusted.contains { $0.contains(address) }
    }

    /// Response headers never copied (lowercase); the gateway sets its own request id.
    static let responseDropped = HeaderNameSet(HeaderRules.hopByHop + ["x-request-id"])

    // MARK: receiving

    /// The upstream's `101` to the handshake (SPEC §12): checked, answered to the client with
    /// the same header rules, then the client connection and the upstream socket become a
    /// tunnel; `leftover` is what the upstream sent after its head in the same read.
    func upstreamSwitched(_ upstreamConnection: UpstreamConnection, _ response: UpstreamResponseParser,
                          leftover: UnsafeRawBufferPointer) {
        guard state == .sent, clientRequest != nil, let facts = tunnelFacts else { return }
        pool?.recordSuccess()
        log.upstreamStatus = 101
        log.upstreamMs = Double(Clock.monotonicNs() - sentNs) / 1_000_000
        // RFC 6455 §4.1: the 101 names the protocol it switches to.
        guard let upgrade = response.joined("upgrade"), WebSocketHandshake.listContains(upgrade, "websocket"),
              let head = SwitchingHead.bytes(response, sessionCookie: snapshot.sessions?.settings.cookie.name,
                                             requestID: log.requestID) else {
            upstreamConnection.close()
            releaseConnection()
            return fail(.badGateway, .upstreamError)
        }
        guard let socket = upstreamConnection.handOff() else {
            releaseConnection()
            return fail(.badGateway, .upstreamError)
        }
        releaseConnection()
        tunnelled = true
        clientRequest = nil
        log.status = 101
        worker.openTunnel(TunnelStart(connection: connection, head: head, upstreamFD: socket.fd, upstreamSSL: socket.ssl,
                                      leftover: leftover, decrypted: socket.decrypted, log: log, startNs: startNs, facts: facts, identity: identity,
                                      snapshot: snapshot))
        finish(logged: true)
    }

    /// The upstream's response head: the client's reply starts. False refuses the response
    /// (the connection is then dropped and `upstreamFailed(.badResponse)` follows).
    func upstreamHead(_ response: UpstreamResponseParser) -> Bool {
        guard state == .sent, let creq = clientRequest else { return false }
        pool?.recordSuccess()
        let status = response.status
        log.upstreamStatus = status
        log.upstreamMs = Double(Clock.monotonicNs() - sentNs) / 1_000_000
        let output = HeaderList(evhttp_request_get_output_headers(creq))
        var named = ConnectionTokens()
        // Each `Connection` field's value as the parser holds it (no String made of it).
        response.forEachHeader { name, value in
            if HeaderRules.nameEquals(name, constant: "connection") { named.add(value) }
        }
        if named.tooMany { return false }
        let replaceCORS = cors != nil
        let sessionCookie = snapshot.sessions?.settings.cookie.name
        var seenLength = false
        response.forEachHeader { name, value in
            if ProxyExchange.responseDropped.contains(name) { return }
            if HeaderRules.nameEquals(name, constant: "content-length") {
                // RFC 9112 §6.3: only a length that frames what the client gets (or a HEAD/304
                // answer's), once: the parser refuses differing repeats.
                if seenLength || !response.forwardsContentLength { return }
                seenLength = true
            }
            if let sessionCookie, SetCookieName.isCookie(sessionCookie, setBy: name, value) { return }
            if named.contains(name) { return }
            if replaceCORS && HeaderRules.isCORSResponseHeader(name) { return }
            evhttp_add_header(output.queue, name, value)
        }
        output.add(constant: "X-Request-Id", log.requestID)
        for (name, value) in cors ?? [] { output.add(name, value) }
        if worker.draining { output.set("Connection", "close") }
        // evhttp would answer an HTTP/1.0 keep-alive client "Content-Length: 0" for a body of
        // unknown length: close such a connection instead, which delimits the body.
        if creq.pointee.minor == 0 && !response.forwardsContentLength {
            HeaderList(evhttp_request_get_input_headers(creq)).remove("Connection")
        }
        state = .streaming
        log.status = status
        worker.restoreClientTimeouts(connection)
        if let reason = response.reason {
            evhttp_send_reply_start(creq, Int32(status), reason)
        } else {
            evhttp_send_reply_start(creq, Int32(status), Worker.reasonPhrase(status))
        }
        return true
    }

    /// Body bytes from the upstream, passed on to the client with backpressure.
    func upstreamBody(_ bytes: UnsafeRawBufferPointer) {
        guard state == .streaming, let creq = clientRequest, !bytes.isEmpty else { return }
        log.bytesSent += bytes.count
        let chunk = worker.chunkBuffer
        evbuffer_add(chunk, bytes.baseAddress, bytes.count)
        evhttp_send_reply_chunk_with_cb(creq, chunk, { _, arg in
            Unmanaged<ProxyExchange>.fromOpaque(arg!).takeUnretainedValue().clientDrained()
        }, context)
        // evhttp leaves the bytes in place when the client is gone or takes no body (HEAD).
        if evbuffer_get_length(chunk) > 0 { evbuffer_drain(chunk, evbuffer_get_length(chunk)) }
        if !paused, let cevcon = evhttp_request_get_connection(creq),
           evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(cevcon))) > ProxyExchange.highWater,
           let upstreamConnection {
            paused = true
            upstreamConnection.pause()
        }
    }

    /// The client took everything written so far: read from the upstream again.
    private func clientDrained() {
        guard paused, state == .streaming, let upstreamConnection else { return }
        paused = false
        upstreamConnection.resume()
    }

    /// The whole response came: the client's reply ends, the connection goes back to its pool.
    func upstreamComplete(_ connection: UpstreamConnection) {
        guard state == .streaming else { return }
        releaseConnection()
        if let creq = clientRequest {
            clientRequest = nil
            evhttp_send_reply_end(creq)
        }
        finish()
    }

    /// The upstream exchange failed (the connection is already closed).
    func upstreamFailed(_ failure: UpstreamFailure) {
        guard state == .sent || state == .streaming else { return }
        releaseConnection()
        if state == .streaming {
            // Part of the body went out: the only honest signal left is to cut the connection.
            if case .timeout = failure { log.reason = .upstreamTimeout } else { log.reason = .upstreamError }
            log.decision = .error
            abortClient()
            return finish()
        }
        switch failure {
        case .closed(beforeResponse: true) where reused && !retriedStale && isIdempotent:
            // A kept-alive connection the upstream closed while idle: once more, on a fresh one.
            guard let pool else { return fail(.badGateway, .upstreamError) }
            retriedStale = true
            state = .waiting
            return send(on: pool.acquireFresh(), reused: false)
        case .connectFailed:
            pool?.recordConnectFailure()
            if tryNextTarget() { return }
            fail(.badGateway, .upstreamConnectFailed)
        case .connectTimeout:
            pool?.recordConnectFailure()
            if tryNextTarget() { return }
            fail(.gatewayTimeout, .upstreamTimeout)
        case .timeout:
            fail(.gatewayTimeout, .upstreamTimeout)
        case .closed, .badResponse:
            fail(.badGateway, .upstreamError)
        }
    }

    /// SPEC §2: a failed connect is tried once on the next healthy target.
    private func tryNextTarget() -> Bool {
        guard !triedNextTarget, let next = worker.pickTarget(upstream, in: snapshot, skipping: pool) else { return false }
        triedNextTarget = true
        state = .waiting
        requestHead = nil   // the Host header may differ
        use(next)
        return true
    }

    private func releaseConnection() {
        guard let connection = upstreamConnection, let pool else { return }
        upstreamConnection = nil
        paused = false
        connection.detach()
        pool.release(connection)
    }

    // MARK: endings

    private func fail(_ error: GatewayError, _ reason: Reason) {
        guard let creq = clientRequest else { return finish() }
        clientRequest = nil
        worker.restoreClientTimeouts(connection)
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

    /// Writes out what this exchange gave the client so far (see `Worker.flushClient`): called
    /// once per upstream read, after every piece of it has been handed on.
    func flushClient() {
        guard !tunnelled else { return }
        worker.flushClient(connection)
    }

    /// The client connection closed while this exchange was in flight.
    func clientGone() {
        guard state != .done else { return }
        state = .done
        releaseConnection()
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
        if !logged { worker.finishLog(&log, startNs: startNs) }
        if connection.current === self { connection.current = nil }
        worker.inFlight -= 1
        worker.exitIfDrained()
        selfRetain?.release()
        selfRetain = nil
    }
}
