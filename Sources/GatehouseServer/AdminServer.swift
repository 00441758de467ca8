import CLibevent
import GatehouseConfig

/// The admin listener (SPEC §8): `/healthz`, `/readyz`, `/metrics`, on the main loop and never
/// on the public listeners. Hostile clients meet the public listeners' limits (SPEC §3.2): the
/// head size, the header timeout (counted from the accept, or from the previous answer on a
/// kept-alive connection, whether the client is idle or drips) and the connection limit.
///
/// Threading: everything runs on the main loop.
final class AdminServer {
    private let base: OpaquePointer
    private let http: OpaquePointer
    private let shared: SharedState
    private let ready: () -> Bool
    /// The listener, its connection count and its pauses: the same limit as a worker's
    /// (SPEC §3.2 Admin listener).
    private var acceptor: ClientAcceptor!
    /// Open admin connections, each with the deadline for its next request head.
    private var connections: [OpaquePointer: AdminConnection] = [:]
    /// `server.header_timeout`: a connection whose request head is not complete within this
    /// (from its accept, or from the previous answer) is closed.
    private var headerTimeoutMs: Int64 = 10_000

    init(base: OpaquePointer, listen: ListenAddress, shared: SharedState, ready: @escaping () -> Bool) throws(ServerError) {
        self.base = base
        self.shared = shared
        self.ready = ready
        http = evhttp_new(base)!
        evhttp_set_default_content_type(http, nil)
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_HEAD.rawValue))
        acceptor = ClientAcceptor(base: base, http: http, name: "admin", limit: ConnectionLimit.derivedMinimum)
        let me = Unmanaged.passRetained(self).toOpaque()
        acceptor.accepted = { [unowned(unsafe) self] evcon in self.accepted(evcon) }
        evhttp_set_bevcb(http, { _, arg in
            Unmanaged<AdminServer>.fromOpaque(arg!).takeUnretainedValue().acceptor.bufferevent(tls: nil)
        }, me)
        evhttp_set_gencb(http, { req, arg in
            Unmanaged<AdminServer>.fromOpaque(arg!).takeUnretainedValue().handle(req!)
        }, me)
        do { try acceptor.bind(listen, reusePort: false) } catch {
            throw ServerError("admin listener: \(error)")
        }
    }

    /// The limits of `config` (at start and after each reload): the public listeners' head
    /// size, header timeout and per-worker connection limit (SPEC §3.2 Admin listener).
    func adopt(_ config: GatewayConfig) {
        let server = config.server
        evhttp_set_max_headers_size(http, Int(server.maxHeaderBytes))
        evhttp_set_max_body_size(http, 4096)
        headerTimeoutMs = server.headerTimeoutMs
        var timeout = timeval(tv_sec: Int(server.headerTimeoutMs / 1000), tv_usec: Int((server.headerTimeoutMs % 1000) * 1000))
        evhttp_set_timeout_tv(http, &timeout)
        acceptor.limit = ConnectionLimit.perWorker(configured: server.maxConnections, openFiles: shared.openFileLimit,
                                                   workers: server.workers)
    }

    // MARK: connections

    private func accepted(_ evcon: OpaquePointer) {
        let conn = AdminConnection(evcon: evcon)
        connections[evcon] = conn
        conn.deadline = gh_timer_new(base, 0, { _, _, arg in
            // The head did not arrive in time: closing the connection runs the close callback.
            evhttp_connection_free(Unmanaged<AdminConnection>.fromOpaque(arg!).takeUnretainedValue().evcon)
        }, Unmanaged.passUnretained(conn).toOpaque())
        _ = gh_timer_add_ms(conn.deadline, headerTimeoutMs)
        evhttp_connection_set_closecb(evcon, { evcon, arg in
            Unmanaged<AdminServer>.fromOpaque(arg!).takeUnretainedValue().closed(evcon!)
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func closed(_ evcon: OpaquePointer) {
        guard let conn = connections.removeValue(forKey: evcon) else { return }
        if let deadline = conn.deadline { event_free(deadline) }
        conn.deadline = nil
        acceptor.closed()
    }

    private func handle(_ req: UnsafeMutablePointer<evhttp_request>) {
        let deadline = evhttp_request_get_connection(req).flatMap { connections[$0]?.deadline }
        if let deadline { event_del(deadline) }
        answer(req)
        // The next request head on this connection has its own header_timeout.
        if let deadline { _ = gh_timer_add_ms(deadline, headerTimeoutMs) }
    }

    private func answer(_ req: UnsafeMutablePointer<evhttp_request>) {
        let uri = evhttp_request_get_uri(req).map { String(cString: $0) } ?? "/"
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        switch path {
        case "/healthz": reply(req, 200, "text/plain", "ok\n")
        case "/readyz":
            if ready() { reply(req, 200, "text/plain", "ready\n") } else { reply(req, 503, "text/plain", "not ready\n") }
        case "/metrics":
            reply(req, 200, "text/plain; version=0.0.4", shared.metrics.render(droppedLogLines: shared.log.dropped.load(ordering: .relaxed))
                  + shared.rateLimits.render())
        default: reply(req, 404, "text/plain", "not found\n")
        }
    }

    private func reply(_ req: UnsafeMutablePointer<evhttp_request>, _ status: Int32, _ type: String, _ body: String) {
        let headers = HeaderList(evhttp_request_get_output_headers(req))
        headers.set("Content-Type", type)
        headers.set("Cache-Control", "no-store")
        let buffer = evbuffer_new()!
        var body = body
        body.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply(req, status, status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found", buffer)
        evbuffer_free(buffer)
    }
}

/// An admin connection and the timer that closes it when its request head is late.
final class AdminConnection {
    let evcon: OpaquePointer
    var deadline: OpaquePointer?
    init(evcon: OpaquePointer) { self.evcon = evcon }
}
