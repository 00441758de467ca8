import CLibevent
import Glibc
import GatehouseDecision

/// `gatehouse echo` answering WebSocket upgrades (SPEC §1, §12): every text or binary frame
/// comes back as it came (fragments as fragments), a ping gets its pong, a close its close.
/// A demo upstream, so that the quick start can show a tunnel: minimal RFC 6455, frames up
/// to `maxPayload`, no extensions.
///
/// Threading: the echo server's one loop.
final class EchoWebSocket {
    static let maxPayload = 64 << 20
    private let evcon: OpaquePointer
    private let bev: OpaquePointer
    private var selfRetain: Unmanaged<EchoWebSocket>?
    private var closing = false

    /// The request's handshake key when `req` is a WebSocket handshake, else nil.
    static func handshakeKey(_ req: UnsafeMutablePointer<evhttp_request>) -> String? {
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        guard WebSocketHandshake.isHandshake(method: Worker.methodName(evhttp_request_get_command(req)),
                                             upgrade: headers.first("Upgrade"),
                                             connection: headers.joined("connection", separator: ", ")),
              let key = headers.first("Sec-WebSocket-Key"), !key.isEmpty else { return nil }
        return key
    }

    /// Answers `101` and takes the connection over from evhttp.
    static func accept(_ req: UnsafeMutablePointer<evhttp_request>, key: String) {
        guard let evcon = evhttp_request_get_connection(req), let bev = evhttp_connection_get_bufferevent(evcon) else { return }
        let socket = EchoWebSocket(evcon: evcon, bev: bev)
        let digest: ([UInt8]) -> [UInt8] = { input in
            var out = [UInt8](repeating: 0, count: 20)
            var size: UInt32 = 0
            _ = input.withUnsafeBufferPointer { EVP_Digest($0.baseAddress, $0.count, &out, &size, EVP_sha1(), nil) }
            return out
        }
        let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(WebSocketFrame.accept(key: key, sha1: digest))\r\n\r\n"
        socket.start(head: Array(head.utf8))
    }

    private init(evcon: OpaquePointer, bev: OpaquePointer) {
        self.evcon = evcon
        self.bev = bev
    }

    private func start(head: [UInt8]) {
        selfRetain = Unmanaged.passRetained(self)
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(bev, { _, arg in
            Unmanaged<EchoWebSocket>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, { _, arg in
            Unmanaged<EchoWebSocket>.fromOpaque(arg!).takeUnretainedValue().written()
        }, { _, _, arg in
            Unmanaged<EchoWebSocket>.fromOpaque(arg!).takeUnretainedValue().finish()
        }, context)
        bufferevent_set_timeouts(bev, nil, nil)
        send(head)
        bufferevent_enable(bev, gh_ev_read() | gh_ev_write())
        readable()
    }

    private func send(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = evbuffer_add(bufferevent_get_output(bev), $0.baseAddress, $0.count) }
    }

    private func readable() {
        let input = bufferevent_get_input(bev)
        while !closing {
            let available = evbuffer_get_length(input)
            guard available > 0, let head = evbuffer_pullup(input, min(available, 14)) else { return }
            // Wait for the whole frame before making its bytes contiguous (one copy per frame).
            if let whole = WebSocketFrame.wireLength(UnsafeRawBufferPointer(start: head, count: min(available, 14))),
               whole <= EchoWebSocket.maxPayload + 14, whole > available { return }
            let length = min(available, EchoWebSocket.maxPayload + 14)
            guard let start = evbuffer_pullup(input, length) else { return }
            switch WebSocketFrame.parse(UnsafeRawBufferPointer(start: start, count: length), maxPayload: EchoWebSocket.maxPayload) {
            case .needMore:
                return
            case .bad:
                send(WebSocketFrame(fin: true, opcode: 8, payload: [0x03, 0xEA]).encoded)  // 1002 protocol error
                return closeAfterWrite()
            case let .frame(frame, consumed):
                evbuffer_drain(input, consumed)
                answer(frame)
            }
        }
    }

    private func answer(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case 8:
            send(WebSocketFrame(fin: true, opcode: 8, payload: frame.payload).encoded)
            closeAfterWrite()
        case 9:
            send(WebSocketFrame(fin: true, opcode: 10, payload: frame.payload).encoded)
        case 10:
            break
        default:
            send(frame.encoded)
        }
    }

    private func closeAfterWrite() {
        closing = true
        bufferevent_disable(bev, gh_ev_read())
        if evbuffer_get_length(bufferevent_get_output(bev)) == 0 { finish() }
    }

    private func written() {
        if closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0 { finish() }
    }

    private func finish() {
        guard let retained = selfRetain else { return }
        selfRetain = nil
        evhttp_connection_free(evcon)
        retained.release()
    }
}
