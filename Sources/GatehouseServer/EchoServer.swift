import CLibevent
import Glibc
import GatehouseCore

/// `gatehouse echo`: a tiny upstream that answers every request with a JSON echo of its
/// method, path, query, headers and body length — for the quick start, demos and for seeing
/// exactly what the gateway forwards. WebSocket handshakes get a `101` and their messages echoed
/// (``EchoWebSocket``). One loop, the calling thread.
public enum EchoServer {
    public static func run(listen: String) -> Int32 {
        gh_ignore_sigpipe()
        let base = event_base_new()!
        let http = evhttp_new(base)!
        evhttp_set_default_content_type(http, nil)
        let all = EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_HEAD.rawValue | EVHTTP_REQ_PUT.rawValue |
            EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_OPTIONS.rawValue | EVHTTP_REQ_PATCH.rawValue
        evhttp_set_allowed_methods(http, UInt16(all))
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            Gateway.say("error: --listen wants HOST:PORT, got \(listen)")
            return 1
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: "[]")
        guard evhttp_bind_socket_with_handle(http, host, port) != nil else {
            Gateway.say("error: cannot listen on \(listen): \(String(cString: strerror(errno)))")
            return 1
        }
        evhttp_set_gencb(http, { req, _ in EchoServer.answer(req!) }, nil)
        for sig in [SIGTERM, SIGINT] {
            let ev = gh_signal_new(base, sig, { _, _, arg in
                event_base_loopexit(OpaquePointer(arg), nil)
            }, UnsafeMutableRawPointer(base))
            event_add(ev, nil)
        }
        Gateway.say("gatehouse echo listening on \(listen)")
        event_base_dispatch(base)
        return 0
    }

    static func answer(_ req: UnsafeMutablePointer<evhttp_request>) {
        if let key = EchoWebSocket.handshakeKey(req) { return EchoWebSocket.accept(req, key: key) }
        let uri = evhttp_request_get_uri(req).map { String(cString: $0) } ?? ""
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var body = "{\"method\":"
        JSONText.appendString(Worker.methodName(evhttp_request_get_command(req)), to: &body)
        body += ",\"path\":"
        JSONText.appendString(String(parts.first ?? ""), to: &body)
        body += ",\"query\":"
        JSONText.appendOptional(parts.count > 1 ? String(parts[1]) : nil, to: &body)
        body += ",\"headers\":{"
        var first = true
        HeaderList(evhttp_request_get_input_headers(req)).forEach { name, value in
            if !first { body += "," }
            first = false
            JSONText.appendString(String(cString: name), to: &body)
            body += ":"
            JSONText.appendString(String(cString: value), to: &body)
        }
        body += "},\"body_length\":\(evbuffer_get_length(evhttp_request_get_input_buffer(req)))}\n"
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Content-Type", "application/json")
        let buffer = evbuffer_new()!
        body.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply(req, 200, "OK", buffer)
        evbuffer_free(buffer)
    }
}
