import CLibevent
import Glibc
import GatehouseCore
import GatehouseDecision
import GatehouseSessions

/// What a tunnel starts with: the handshake's client connection, the client's `101` head, the
/// upstream's socket (and TLS state) taken from its `UpstreamConnection`, the bytes the
/// upstream sent after its head, and the handshake's facts, caller and snapshot.
struct TunnelStart {
    var connection: ClientConnection
    var head: [UInt8]
    var upstreamFD: Int32
    var upstreamSSL: OpaquePointer?
    var leftover: UnsafeRawBufferPointer
    /// What OpenSSL had decrypted beyond the upstream's read (TLS upstreams).
    var decrypted: [UInt8] = []
    var log: AccessLogRecord
    var startNs: UInt64
    var facts: RequestFacts
    var identity: Identity?
    var snapshot: Snapshot
}

/// One WebSocket tunnel (SPEC §12): the client's connection, taken over from evhttp after the
/// handshake, and the upstream's socket, relayed both ways byte for byte — frames are never
/// parsed — on the worker's loop.
///
/// Each direction is bounded: when what waits to be written to one side passes `bound`, the
/// other side is no longer read until that output has drained to half of it (bufferevent
/// write watermark). Input is read at most `bound` at a time (read watermark). So a tunnel
/// holds at most about 2 × `bound` per direction, whatever the peers do.
///
/// One timer serves every deadline: the idle timeout (checked against the last byte, so that
/// traffic costs no timer update), the token's `exp` + leeway, the session's next look-up.
///
/// Threading: everything runs on the worker's loop. The worker's `TunnelRegistry` holds the
/// tunnel from `start` to `end`; callbacks reach it through an unretained pointer.
final class Tunnel {
    static let bound = 256 * 1024
    /// How long a side that closed waits for the other side's output to be written.
    static let lingerMs: Int64 = 5_000

    unowned(unsafe) let worker: Worker
    let connection: ClientConnection
    let client: OpaquePointer
    let upstream: OpaquePointer
    let facts: RequestFacts
    let identity: Identity?
    /// The store key of a cookie-authenticated tunnel's session.
    let sessionID: String?
    /// The snapshot it is judged under: the handshake's, then each reload's it passed.
    var snapshot: Snapshot
    private var log: AccessLogRecord
    private let startNs: UInt64
    private var timer: OpaquePointer?
    private var lastByteNs: UInt64
    /// When the token ends (`exp` + leeway, Unix ms); nil without a token.
    private let tokenEndMs: Int64?
    /// When the session must be looked at again at the latest (Unix ms): when it would expire
    /// unless seen again. Nil until a look-up said (the periodic check looks every few seconds).
    var sessionRecheckMs: Int64?
    /// A look-up of the session is under way.
    var sessionLookupInFlight = false
    private var lastTouchMs: Int64 = 0
    private var closing = false
    private(set) var ended = false
    private var bytesToClient = 0
    private var bytesFromClient = 0

    init(worker: Worker, start: TunnelStart, client: OpaquePointer, upstream: OpaquePointer) {
        self.worker = worker
        connection = start.connection
        self.client = client
        self.upstream = upstream
        facts = start.facts
        identity = start.identity
        snapshot = start.snapshot
        log = start.log
        startNs = start.startNs
        lastByteNs = Clock.monotonicNs()
        sessionID = start.identity?.method == .session ? start.facts.sessionCookie.map(SessionID.hash) : nil
        if let token = start.identity?.token {
            let leeway = start.snapshot.verifier?.leeway ?? 0
            tokenEndMs = (token.expiresAt + leeway) * 1000
        } else {
            tokenEndMs = nil
        }
    }

    private var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// Writes the client's `101` and what each side already sent, then relays.
    func start(head: [UInt8], leftover: UnsafeRawBufferPointer, decrypted: [UInt8]) {
        let toClient = bufferevent_get_output(client)
        head.withUnsafeBytes { _ = evbuffer_add(toClient, $0.baseAddress, $0.count) }
        if !leftover.isEmpty {
            evbuffer_add(toClient, leftover.baseAddress, leftover.count)
            count(toClient: leftover.count)
        }
        if !decrypted.isEmpty {
            decrypted.withUnsafeBytes { _ = evbuffer_add(toClient, $0.baseAddress, $0.count) }
            count(toClient: decrypted.count)
        }
        // Bytes the client sent right behind its handshake wait in evhttp's input buffer.
        let early = bufferevent_get_input(client)
        let pending = evbuffer_get_length(early)
        if pending > 0 {
            count(fromClient: pending)
            evbuffer_add_buffer(bufferevent_get_output(upstream), early)
        }
        for side in [client, upstream] {
            bufferevent_setcb(side, { bev, arg in
                Unmanaged<Tunnel>.fromOpaque(arg!).takeUnretainedValue().relay(from: bev!)
            }, { bev, arg in
                Unmanaged<Tunnel>.fromOpaque(arg!).takeUnretainedValue().drained(bev!)
            }, { bev, what, arg in
                Unmanaged<Tunnel>.fromOpaque(arg!).takeUnretainedValue().sideEvent(bev!, what)
            }, context)
            bufferevent_set_timeouts(side, nil, nil)
            bufferevent_setwatermark(side, gh_ev_read(), 0, Tunnel.bound)
            bufferevent_setwatermark(side, gh_ev_write(), 0, 0)
            bufferevent_enable(side, gh_ev_read() | gh_ev_write())
        }
        timer = gh_timer_new(worker.base, 0, { _, _, arg in
            Unmanaged<Tunnel>.fromOpaque(arg!).takeUnretainedValue().timerFired()
        }, context)
        armTimer()
    }

    // MARK: relaying

    private func relay(from source: OpaquePointer) {
        let input = bufferevent_get_input(source)
        let length = evbuffer_get_length(input)
        guard length > 0 else { return }
        if closing { evbuffer_drain(input, length); return }
        lastByteNs = Clock.monotonicNs()
        let target = source == client ? upstream : client
        if source == client {
            count(fromClient: length)
            clientActivity()
        } else {
            count(toClient: length)
        }
        let output = bufferevent_get_output(target)
        evbuffer_add_buffer(output, input)
        if bufferevent_get_enabled(target) & gh_ev_write() == 0 { bufferevent_enable(target, gh_ev_write()) }
        if evbuffer_get_length(output) >= Tunnel.bound {
            // Backpressure: the target reads slowly; stop reading the source until it caught up.
            bufferevent_disable(source, gh_ev_read())
            bufferevent_setwatermark(target, gh_ev_write(), Tunnel.bound / 2, 0)
        }
    }

    /// `side`'s output went down to its write watermark.
    private func drained(_ side: OpaquePointer) {
        let output = bufferevent_get_output(side)
        if closing {
            if evbuffer_get_length(output) == 0 { end(.tunnelClosed) }
            return
        }
        let source = side == client ? upstream : client
        guard bufferevent_get_enabled(source) & gh_ev_read() == 0, evbuffer_get_length(output) <= Tunnel.bound / 2 else { return }
        bufferevent_setwatermark(side, gh_ev_write(), 0, 0)
        bufferevent_enable(source, gh_ev_read())
    }

    /// End of stream or an error on `side`: what it sent goes on, then the other side is
    /// closed once its output is written (at most `lingerMs`).
    private func sideEvent(_ side: OpaquePointer, _ what: Int16) {
        guard Int32(what) & Int32(BEV_EVENT_EOF | BEV_EVENT_ERROR) != 0 else { return }
        if closing { return end(.tunnelClosed) }
        relay(from: side)
        closing = true
        bufferevent_disable(client, gh_ev_read())
        bufferevent_disable(upstream, gh_ev_read())
        let other = side == client ? upstream : client
        let output = bufferevent_get_output(other)
        if evbuffer_get_length(output) == 0 { return end(.tunnelClosed) }
        bufferevent_setwatermark(other, gh_ev_write(), 0, 0)
        bufferevent_enable(other, gh_ev_write())
        if let timer { _ = gh_timer_add_ms(timer, Tunnel.lingerMs) }
    }

    private func count(toClient bytes: Int) {
        bytesToClient += bytes
        worker.shared.metrics.tunnelBytesToClient.add(bytes, ordering: .relaxed)
    }

    private func count(fromClient bytes: Int) {
        bytesFromClient += bytes
        worker.shared.metrics.tunnelBytesFromClient.add(bytes, ordering: .relaxed)
    }

    /// Client bytes count as session activity (SPEC §12), refreshed as requests refresh it.
    private func clientActivity() {
        guard let sessionID, let runtime = snapshot.sessions else { return }
        let nowMs = Clock.wallMs()
        guard nowMs - lastTouchMs >= TunnelChecks.touchInterval(idleTimeout: runtime.settings.idleTimeout) * 1000 else { return }
        lastTouchMs = nowMs
        worker.sessionStore(runtime).touch(idHash: sessionID, lastSeen: Clock.sessionWriteSeconds()) { _ in }
    }

    // MARK: deadlines

    /// Arms the timer for the earliest deadline: idle, token, session look-up.
    func armTimer() {
        guard let timer, !closing, !ended else { return }
        let idleMs = snapshot.config.server.tunnelIdleTimeoutMs
        let sinceByteMs = Int64((Clock.monotonicNs() - lastByteNs) / 1_000_000)
        var waitMs = idleMs - sinceByteMs
        let nowMs = Clock.wallMs()
        if let tokenEndMs { waitMs = min(waitMs, tokenEndMs - nowMs) }
        if let sessionRecheckMs { waitMs = min(waitMs, sessionRecheckMs - nowMs) }
        _ = gh_timer_add_ms(timer, max(waitMs, 0) + 1)
    }

    private func timerFired() {
        if closing { return end(.tunnelClosed) }
        let nowMs = Clock.wallMs()
        if let tokenEndMs, nowMs >= tokenEndMs { return end(.tokenExpired) }
        if Int64((Clock.monotonicNs() - lastByteNs) / 1_000_000) >= snapshot.config.server.tunnelIdleTimeoutMs {
            return end(.tunnelIdle)
        }
        if let sessionRecheckMs, nowMs >= sessionRecheckMs {
            self.sessionRecheckMs = nil
            worker.checkSession(of: self)
        }
        armTimer()
    }

    // MARK: the end

    /// Closes both sides now and writes the tunnel's access-log line (SPEC §12).
    func end(_ reason: Reason) {
        guard !ended else { return }
        ended = true
        if let timer { event_free(timer) }
        timer = nil
        bufferevent_free(upstream)
        log.status = 101
        if !log.shadow {
            // A shadow route's line keeps the refusal it would have made (SPEC §15.2).
            log.decision = .allow
            log.reason = reason
        }
        log.bytesSent = bytesToClient
        log.bytesReceived = bytesFromClient
        worker.finishLog(&log, startNs: startNs)
        worker.tunnelEnded(self)
        if !connection.closed { evhttp_connection_free(connection.evcon) }
    }
}
