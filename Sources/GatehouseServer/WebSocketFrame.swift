/// RFC 6455 §5.2 frames, as far as `gatehouse echo` needs them (the gateway itself never
/// parses frames: a tunnel relays bytes). Pure: no I/O.
struct WebSocketFrame: Equatable {
    var fin: Bool
    /// 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    var opcode: UInt8
    /// Unmasked.
    var payload: [UInt8]

    enum Parsed: Equatable {
        /// The input holds no whole frame yet.
        case needMore
        /// A frame and the bytes it took.
        case frame(WebSocketFrame, consumed: Int)
        /// Not a frame a server accepts: reserved bits or opcodes, an unmasked client frame,
        /// a control frame over 125 bytes or fragmented, a length over `maxPayload` or not in
        /// its shortest form's range.
        case bad
    }

    /// The first frame of `input`, sent by a client (so masked).
    static func parse(_ input: UnsafeRawBufferPointer, maxPayload: Int) -> Parsed {
        guard input.count >= 2 else { return .needMore }
        let first = input[0], second = input[1]
        let opcode = first & 0x0F
        guard first & 0x70 == 0, [0, 1, 2, 8, 9, 10].contains(opcode), second & 0x80 != 0 else { return .bad }
        var length = UInt64(second & 0x7F)
        var offset = 2
        if length == 126 {
            guard input.count >= 4 else { return .needMore }
            length = UInt64(input[2]) << 8 | UInt64(input[3])
            guard length >= 126 else { return .bad }
            offset = 4
        } else if length == 127 {
            guard input.count >= 10 else { return .needMore }
            length = (2..<10).reduce(UInt64(0)) { $0 << 8 | UInt64(input[$1]) }
            guard length > 0xFFFF, length >> 63 == 0 else { return .bad }
            offset = 10
        }
        let control = opcode >= 8
        guard length <= UInt64(maxPayload), !control || (length <= 125 && first & 0x80 != 0) else { return .bad }
        guard input.count - offset >= 4 + Int(length) else { return .needMore }
        let mask = (input[offset], input[offset + 1], input[offset + 2], input[offset + 3])
        offset += 4
        var payload = [UInt8](repeating: 0, count: Int(length))
        for i in 0..<Int(length) {
            let key: UInt8
            switch i & 3 {
            case 0: key = mask.0
            case 1: key = mask.1
            case 2: key = mask.2
            default: key = mask.3
            }
            payload[i] = input[offset + i] ^ key
        }
        return .frame(WebSocketFrame(fin: first & 0x80 != 0, opcode: opcode, payload: payload), consumed: offset + Int(length))
    }

    /// The whole length (head, mask, payload) of the frame `input` starts with, once its head
    /// is there; nil while it is not. For waiting without copying a large frame's bytes.
    static func wireLength(_ input: UnsafeRawBufferPointer) -> Int? {
        guard input.count >= 2 else { return nil }
        let mask = input[1] & 0x80 != 0 ? 4 : 0
        switch input[1] & 0x7F {
        case 126:
            guard input.count >= 4 else { return nil }
            return 4 + mask + (Int(input[2]) << 8 | Int(input[3]))
        case 127:
            guard input.count >= 10 else { return nil }
            let length = (2..<10).reduce(UInt64(0)) { $0 << 8 | UInt64(input[$1]) }
            return length > UInt64(Int.max / 2) ? Int.max : 10 + mask + Int(length)
        case let short:
            return 2 + mask + Int(short)
        }
    }

    /// The frame as a server sends it (unmasked, shortest length form).
    var encoded: [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let count = payload.count
        if count < 126 {
            out.append(UInt8(count))
        } else if count <= 0xFFFF {
            out += [126, UInt8(count >> 8), UInt8(count & 0xFF)]
        } else {
            out.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(count) >> UInt64(shift)) & 0xFF)) }
        }
        return out + payload
    }

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2): base64 of the SHA-1
    /// of the key and the protocol's GUID.
    static func accept(key: String, sha1: ([UInt8]) -> [UInt8]) -> String {
        base64(sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)))
    }

    /// Standard base64 with padding (RFC 4648 §4).
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
