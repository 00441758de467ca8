import CLibevent
import Glibc
import GatehouseCore
import GatehouseConfig

/// The accepting side of one evhttp server (a worker's public listeners, or the admin
/// listener): its listeners, and the pauses of SPEC §3.2 Connections, decided by `AcceptGate`.
///
/// evhttp accepts through a listener callback of its own (`accept_socket_cb`); the acceptor
/// wraps it (see `gh_listener_callback`): each accepted socket goes on to evhttp, and the
/// connection evhttp made of it is handed to `accepted`, whose owner watches it close and calls
/// `closed()`. A pause disables the listeners, so that new connections wait in the kernel's
/// backlog — instead of a listener that stays readable and an accept(2) that fails with EMFILE
/// on every loop iteration, each failure logged.
///
/// Threading: every method runs on the loop of `base`.
final class ClientAcceptor {
    private let base: OpaquePointer
    private let http: OpaquePointer
    /// Who is pausing, in log lines ("worker 0", "admin").
    private let name: String
    private var gate: AcceptGate
    /// Client connections this acceptor holds at most (`server.max_connections`, SPEC §3.2).
    var limit: Int {
        get { gate.limit }
        set { carryOut(gate.setLimit(newValue)) }
    }
    /// Called with each new evhttp connection, right after evhttp made it.
    var accepted: ((OpaquePointer) -> Void)?
    private var listeners: [(handle: OpaquePointer, listener: OpaquePointer, evhttpCallback: evconnlistener_cb)] = []
    private var retryTimer: OpaquePointer?
    /// The bufferevent made (by `bufferevent(tls:)`) for the connection being accepted.
    private var pendingBufferevent: OpaquePointer?
    /// The connection being accepted could not get its TLS bufferevent.
    private var closeAtOnce = false

    init(base: OpaquePointer, http: OpaquePointer, name: String, limit: Int) {
        self.base = base
        self.http = http
        self.name = name
        gate = AcceptGate(limit: limit)
    }

    /// Opens a listener on `address` (with `SO_REUSEPORT` when `reusePort`) that hands its
    /// connections to this acceptor's evhttp server.
    func bind(_ address: ListenAddress, reusePort: Bool) throws(ServerError) {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let text = address.description
        let ok = withUnsafeMutablePointer(to: &storage) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { evutil_parse_sockaddr_port(text, $0, &length) }
        }
        guard ok == 0 else { throw ServerError("cannot parse listen address \(text)") }
        let flags = UInt32(LEV_OPT_REUSEABLE | (reusePort ? LEV_OPT_REUSEABLE_PORT : 0) | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC)
        let me = Unmanaged.passUnretained(self).toOpaque()
        let listener = withUnsafePointer(to: &storage) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                evconnlistener_new_bind(base, ClientAcceptor.layoutProbe, me, flags, 1024, $0, length)
            }
        }
        guard let listener else {
            throw ServerError("cannot listen on \(text): \(String(cString: strerror(errno)))")
        }
        // The listener's layout is the expected one when our own callback reads back.
        guard let probe = gh_listener_callback(listener, me),
              unsafeBitCast(probe, to: UnsafeRawPointer.self) == unsafeBitCast(ClientAcceptor.layoutProbe, to: UnsafeRawPointer.self) else {
            evconnlistener_free(listener)
            throw ServerError("cannot listen on \(text): this libevent's listener is not laid out as 2.1's")
        }
        guard let handle = evhttp_bind_listener(http, listener) else { throw ServerError("cannot bind evhttp on \(text)") }
        guard let evhttpCallback = gh_listener_callback(listener, UnsafeMutableRawPointer(http)) else {
            evhttp_del_accept_socket(http, handle)
            throw ServerError("cannot listen on \(text): evhttp's accept callback not found")
        }
        listeners.append((handle, listener, evhttpCallback))
        evconnlistener_set_cb(listener, { listener, fd, address, length, arg in
            Unmanaged<ClientAcceptor>.fromOpaque(arg!).takeUnretainedValue().accept(listener!, fd, address, length)
        }, me)
        evconnlistener_set_error_cb(listener, { _, arg in
            let failure = errno
            Unmanaged<ClientAcceptor>.fromOpaque(arg!).takeUnretainedValue().acceptFailed(failure)
        })
    }

    private static let layoutProbe: evconnlistener_cb = { _, fd, _, _, _ in close(fd) }

    /// The bufferevent for a connection being accepted (evhttp's `bevcb`): OpenSSL's on `tls`,
    /// else a plain one as evhttp would make. Remembered, to find the connection evhttp makes.
    /// When OpenSSL cannot make one (no memory), evhttp would make a plain one itself and speak
    /// HTTP in clear on a TLS listener: the connection gets a plain one and is closed at once.
    func bufferevent(tls: OpaquePointer?) -> OpaquePointer? {
        var made: OpaquePointer?
        if let tls { made = gh_tls_server_bufferevent(base, tls) }
        closeAtOnce = tls != nil && made == nil
        if made == nil { made = gh_plain_server_bufferevent(base) }
        pendingBufferevent = made
        return made
    }

    /// A socket accepted by `listener`: evhttp makes its connection, then the count and the
    /// limit are checked.
    private func accept(_ listener: OpaquePointer, _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: Int32) {
        guard let entry = listeners.first(where: { $0.listener == listener }) else { close(fd); return }
        pendingBufferevent = nil
        closeAtOnce = false
        entry.evhttpCallback(listener, fd, address, length, UnsafeMutableRawPointer(http))
        let bev = pendingBufferevent
        pendingBufferevent = nil
        // evhttp closes the socket when it cannot make a connection of it, and a bufferevent
        // it frees loses its callbacks at once (bufferevent_free); otherwise the callbacks'
        // argument is the new connection (evhttp_start_read_ set it).
        guard let bev, fcntl(fd, F_GETFD) != -1 else { return }
        var argument: UnsafeMutableRawPointer?
        bufferevent_getcb(bev, nil, nil, nil, &argument)
        guard let argument, evhttp_connection_get_bufferevent(OpaquePointer(argument)) == bev else { return }
        if closeAtOnce { return evhttp_connection_free(OpaquePointer(argument)) }
        accepted?(OpaquePointer(argument))
        carryOut(gate.accepted(nowNs: Clock.monotonicNs()))
    }

    /// A connection handed to `accepted` has closed.
    func closed() {
        carryOut(gate.closed())
    }

    private func acceptFailed(_ failure: Int32) {
        carryOut(gate.acceptFailed(String(cString: strerror(failure)), nowNs: Clock.monotonicNs()))
    }

    private func carryOut(_ action: AcceptGate.Action) {
        switch action {
        case .keepAccepting, .stayPaused:
            return
        case let .pause(retryAfterMs, log):
            for entry in listeners { evconnlistener_disable(entry.listener) }
            if let log { Gateway.say("\(name): \(log)") }
            guard let retryAfterMs else { return }
            if retryTimer == nil {
                retryTimer = gh_timer_new(base, 0, { _, _, arg in
                    let acceptor = Unmanaged<ClientAcceptor>.fromOpaque(arg!).takeUnretainedValue()
                    acceptor.carryOut(acceptor.gate.retryDue())
                }, Unmanaged.passUnretained(self).toOpaque())
            }
            _ = gh_timer_add_ms(retryTimer, retryAfterMs)
        case .resume:
            if let retryTimer { event_del(retryTimer) }
            for entry in listeners { evconnlistener_enable(entry.listener) }
        }
    }

    /// Closes every listener (a draining worker); connections already open are not touched.
    func closeListeners() {
        if let retryTimer { event_del(retryTimer) }
        gate.stop()
        for entry in listeners { evhttp_del_accept_socket(http, entry.handle) }
        listeners.removeAll()
    }
}
