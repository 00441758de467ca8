import CLibevent
import GatehouseConfig

/// The admin listener (SPEC §8): `/healthz`, `/readyz`, `/metrics`, on the main loop and never
/// on the public listeners.
final class AdminServer {
    private let http: OpaquePointer
    private let shared: SharedState
    private let ready: () -> Bool

    init(base: OpaquePointer, listen: ListenAddress, shared: SharedState, ready: @escaping () -> Bool) throws(ServerError) {
        self.shared = shared
        self.ready = ready
        http = evhttp_new(base)!
        evhttp_set_default_content_type(http, nil)
        evhttp_set_allowed_methods(http, UInt16(EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_HEAD.rawValue))
        guard evhttp_bind_socket_with_handle(http, listen.host, listen.port) != nil else {
            throw ServerError("cannot listen on admin address \(listen)")
        }
        evhttp_set_gencb(http, { req, arg in
            Unmanaged<AdminServer>.fromOpaque(arg!).takeUnretainedValue().handle(req!)
        }, Unmanaged.passRetained(self).toOpaque())
    }

    private func handle(_ req: UnsafeMutablePointer<evhttp_request>) {
        let uri = evhttp_request_get_uri(req).map { String(cString: $0) } ?? "/"
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        switch path {
        case "/healthz": reply(req, 200, "text/plain", "ok\n")
        case "/readyz":
            if ready() { reply(req, 200, "text/plain", "ready\n") } else { reply(req, 503, "text/plain", "not ready\n") }
        case "/metrics":
            reply(req, 200, "text/plain; version=0.0.4", shared.metrics.render(droppedLogLines: shared.log.dropped.load(ordering: .relaxed)))
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
