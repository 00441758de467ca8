/// Fuzz target `websocket`: what the gateway reads of a WebSocket handshake (SPEC §12) and the
/// frames `gatehouse echo` reads (RFC 6455 §5.2), both from any client.
///
/// The first byte chooses: even, the handshake's header lists — the rest is `UPGRADE\nCONNECTION`
/// (without a newline, the rest is the `Connection` value and `Upgrade` is `websocket`), checked
/// against a model written here (split at commas, blanks trimmed, ASCII case ignored), and the
/// body announcement (`Content-Length` from the same bytes); odd, frames: the rest is parsed
/// frame after frame (`maxPayload` from the choice byte). Invariants:
/// - a handshake is recognized exactly when the model says so;
/// - a parsed frame takes at least 6 bytes and no more than the input holds, its payload is at
///   most `maxPayload`, a control frame is final and at most 125 bytes; re-encoded and masked
///   with a zero key, it parses back to itself, taking as many bytes as it took; `wireLength`
///   announces exactly the bytes it took.
@testable import GatehouseServer
import GatehouseDecision

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocket(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let rest = Array(input.rest())
    if choice & 1 == 0 { checkHandshake(rest) } else { checkFrames(rest, maxPayload: Int(choice >> 1) * 1024 + 125) }
    return 0
}

private func checkHandshake(_ bytes: [UInt8]) {
    let upgrade: String, connection: String
    if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
        upgrade = String(decoding: bytes[..<newline], as: UTF8.self)
        connection = String(decoding: bytes[(newline + 1)...], as: UTF8.self)
    } else {
        upgrade = "websocket"
        connection = String(decoding: bytes, as: UTF8.self)
    }
    let expected = modelContains(upgrade, "websocket") && modelContains(connection, "upgrade")
    let actual = WebSocketHandshake.isHandshake(method: "GET", upgrade: upgrade, connection: connection)
    expect(actual == expected, "handshake \(upgrade.debugDescription) / \(connection.debugDescription): \(actual)")
    expect(!WebSocketHandshake.isHandshake(method: "POST", upgrade: upgrade, connection: connection), "POST is no handshake")
    let digitsOnly = !connection.isEmpty && connection.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    let body = WebSocketHandshake.announcesBody(contentLength: connection, transferEncoding: nil)
    if digitsOnly {
        expect(body == connection.utf8.contains { $0 != 0x30 }, "Content-Length \(connection.debugDescription): \(body)")
    }
}

private func modelContains(_ list: String, _ token: String) -> Bool {
    list.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).contains { element in
        var bytes = Array(element)
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        return bytes.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 } == Array(token.utf8)
    }
}

private func checkFrames(_ bytes: [UInt8], maxPayload: Int) {
    var offset = 0
    while offset < bytes.count {
        let parsed = bytes[offset...].withUnsafeBytes { WebSocketFrame.parse($0, maxPayload: maxPayload) }
        guard case let .frame(frame, consumed) = parsed else { return }
        expect(consumed >= 6 && consumed <= bytes.count - offset, "consumed \(consumed) of \(bytes.count - offset)")
        let announced = bytes[offset...].withUnsafeBytes { WebSocketFrame.wireLength($0) }
        expect(announced == consumed, "wireLength \(String(describing: announced)) but the frame took \(consumed)")
        expect(frame.payload.count <= maxPayload, "payload over the limit")
        if frame.opcode >= 8 { expect(frame.fin && frame.payload.count <= 125, "control frame \(frame.opcode)") }
        var wire = frame.encoded
        wire[1] |= 0x80
        let header = frame.payload.count < 126 ? 2 : frame.payload.count <= 0xFFFF ? 4 : 10
        wire.insert(contentsOf: [0, 0, 0, 0], at: header)
        let again = wire.withUnsafeBytes { WebSocketFrame.parse($0, maxPayload: maxPayload) }
        expect(again == .frame(frame, consumed: wire.count), "re-encoded frame parses differently")
        offset += consumed
    }
}
