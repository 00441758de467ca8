import CLibevent
import Glibc
import Synchronization
import GatehouseCore
import GatehouseDecision
import GatehouseSessions

/// The WebSocket tunnels of one loop (SPEC §12), and the loop's timers that serve them all.
final class TunnelRegistry {
    var all: [ObjectIdentifier: Tunnel] = [:]
    /// Open cookie-authenticated tunnels (their sessions are looked at periodically).
    var withSessions = 0
    var sessionCheck: OpaquePointer?
    var drainTimer: OpaquePointer?
    /// How often the sessions of open cookie tunnels are looked up: a session that ends on
    /// another instance sharing the store closes its tunnels here within 5 s (SPEC §12).
    static let sessionCheckMs: Int64 = 3_000
}

/// What every loop must hear about tunnels, from any thread: a session that ended here
/// (logout) closes its tunnels on every loop at once.
final class TunnelHub: Sendable {
    private let workers = Mutex<[Worker]>([])
    private let sessionTunnels = Atomic<Int>(0)

    func register(_ list: [Worker]) { workers.withLock { $0 = list } }

    func sessionTunnelsChanged(by delta: Int) { sessionTunnels.add(delta, ordering: .relaxed) }

    /// `idHash`'s session ended (logout on this instance): every loop closes its tunnels.
    func sessionEnded(_ idHash: String) {
        guard sessionTunnels.load(ordering: .relaxed) > 0 else { return }
        for worker in workers.withLock({ $0 }) { worker.post { $0.sessionEnded(idHash) } }
    }
}

extension Worker {
    /// Takes the handshake's client connection and the upstream socket into a new tunnel.
    func openTunnel(_ start: TunnelStart) {
        let conn = start.connection
        guard !conn.closed, let clientBev = evhttp_connection_get_bufferevent(conn.evcon),
              let upstreamBev = upstreamBufferevent(fd: start.upstreamFD, ssl: start.upstreamSSL) else {
            if let ssl = start.upstreamSSL { SSL_free(ssl) }
            Glibc.close(start.upstreamFD)
            var log = start.log
            log.reason = .clientClosed
            log.decision = .error
            finishLog(&log, startNs: start.startNs)
            if !conn.closed { evhttp_connection_free(conn.evcon) }
            return
        }
        let tunnel = Tunnel(worker: self, start: start, client: clientBev, upstream: upstreamBev)
        tunnels.all[ObjectIdentifier(tunnel)] = tunnel
        shared.metrics.openTunnels.add(1, ordering: .relaxed)
        if tunnel.sessionID != nil {
            tunnels.withSessions += 1
            shared.tunnelHub.sessionTunnelsChanged(by: 1)
            armSessionCheck()
        }
        tunnel.start(head: start.head, leftover: start.leftover, decrypted: start.decrypted)
    }

    private func upstreamBufferevent(fd: Int32, ssl: OpaquePointer?) -> OpaquePointer? {
        guard let ssl else { return bufferevent_socket_new(base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) }
        let bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_OPEN, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        if let bev { bufferevent_openssl_set_allow_dirty_shutdown(bev, 1) }
        return bev
    }

    /// A tunnel ended (its log line is written).
    func tunnelEnded(_ tunnel: Tunnel) {
        guard tunnels.all.removeValue(forKey: ObjectIdentifier(tunnel)) != nil else { return }
        shared.metrics.openTunnels.subtract(1, ordering: .relaxed)
        if tunnel.sessionID != nil {
            tunnels.withSessions -= 1
            shared.tunnelHub.sessionTunnelsChanged(by: -1)
        }
        exitIfDrained()
    }

    // MARK: sessions

    private func armSessionCheck() {
        guard tunnels.sessionCheck == nil else { return }
        tunnels.sessionCheck = gh_timer_new(base, 1, { _, _, arg in
            Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue().checkTunnelSessions()
        }, Unmanaged.passUnretained(self).toOpaque())
        _ = gh_timer_add_ms(tunnels.sessionCheck, TunnelRegistry.sessionCheckMs)
    }

    /// Every few seconds: one look-up per open cookie tunnel, all sent at once (a Redis store
    /// pipelines them on this loop's connection); none blocks the loop.
    private func checkTunnelSessions() {
        guard tunnels.withSessions > 0 else {
            if let timer = tunnels.sessionCheck { event_free(timer) }
            tunnels.sessionCheck = nil
            return
        }
        for tunnel in tunnels.all.values where tunnel.sessionID != nil { checkSession(of: tunnel) }
    }

    /// Looks `tunnel`'s session up and closes the tunnel when it ended.
    func checkSession(of tunnel: Tunnel) {
        guard let id = tunnel.sessionID, !tunnel.sessionLookupInFlight, !tunnel.ended,
              let runtime = tunnel.snapshot.sessions, let subject = tunnel.identity?.subject else { return }
        tunnel.sessionLookupInFlight = true
        sessionStore(runtime).lookup(idHash: id) { result in
            tunnel.sessionLookupInFlight = false
            guard !tunnel.ended else { return }
            switch TunnelChecks.session(result, subject: subject, config: tunnel.snapshot.config, now: Clock.wallMs() / 1000) {
            case .end(let reason):
                tunnel.end(reason)
            case .keep(let recheckAt):
                tunnel.sessionRecheckMs = recheckAt * 1000
                tunnel.armTimer()
            case .unknown:
                break
            }
        }
    }

    /// The session `idHash` ended on this instance (logout): its tunnels close now.
    func sessionEnded(_ idHash: String) {
        for tunnel in Array(tunnels.all.values) where tunnel.sessionID == idHash { tunnel.end(.sessionExpired) }
    }

    // MARK: reload and stop

    /// A reload (or new keys): every open tunnel is decided again under `next`; those it would
    /// now refuse close (SPEC §12).
    func recheckTunnels(under next: Snapshot) {
        guard !tunnels.all.isEmpty else { return }
        let auth = AuthContext(verifier: next.verifier, cache: nil, now: Clock.wallMs() / 1000)
        for tunnel in Array(tunnels.all.values) {
            let subject = tunnel.sessionID == nil ? nil : tunnel.identity?.subject
            if let reason = TunnelChecks.recheck(tunnel.facts, sessionSubject: subject, config: next.decision.config, auth: auth) {
                tunnel.end(reason)
            } else {
                tunnel.snapshot = next
                tunnel.armTimer()
            }
        }
    }

    /// A stop: open tunnels close shortly before `server.shutdown_grace` ends, so that each
    /// still writes its log line.
    func drainTunnels() {
        guard !tunnels.all.isEmpty, tunnels.drainTimer == nil else { return }
        tunnels.drainTimer = gh_timer_new(base, 0, { _, _, arg in
            let worker = Unmanaged<Worker>.fromOpaque(arg!).takeUnretainedValue()
            for tunnel in Array(worker.tunnels.all.values) { tunnel.end(.tunnelClosed) }
        }, Unmanaged.passUnretained(self).toOpaque())
        _ = gh_timer_add_ms(tunnels.drainTimer, max(snapshot.config.server.shutdownGraceMs - 250, 0))
    }
}
