/// What a request's head says about a WebSocket upgrade (SPEC §12, RFC 6455 §4.1): read once
/// at the edge into ``RequestFacts``, so that the pipeline stays pure.
public enum WebSocketHandshake {
    /// True for a handshake: `GET`, an `Upgrade` list naming `websocket` and a `Connection`
    /// list naming `upgrade` (ASCII case-insensitive; further tokens in either are allowed).
    public static func isHandshake(method: String, upgrade: String?, connection: String?) -> Bool {
        guard method == "GET", let upgrade, let connection else { return false }
        return listContains(upgrade, "websocket") && listContains(connection, "upgrade")
    }

    /// True when the head announces a body: a `Content-Length` other than 0, or any
    /// `Transfer-Encoding` (an upgrade with a body is a 400, SPEC §12). A value that is not a
    /// number counts as a body (the head check refuses it anyway).
    public static func announcesBody(contentLength: String?, transferEncoding: String?) -> Bool {
        if transferEncoding != nil { return true }
        guard let contentLength else { return false }
        let digits = contentLength.utf8.filter { $0 != 0x20 && $0 != 0x09 }
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return true }
        return digits.contains { $0 != 0x30 }
    }

    /// A comma-separated list (RFC 9110 §5.6.1) has an element equal to `lowercased`, ignoring
    /// ASCII case and the optional whitespace around elements.
    public static func listContains(_ list: String, _ lowercased: StaticString) -> Bool {
        let wanted = UnsafeRawBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount)
        var element: [UInt8] = []
        func matches() -> Bool {
            var first = 0, last = element.count
            while first < last && (element[first] == 0x20 || element[first] == 0x09) { first += 1 }
            while last > first && (element[last - 1] == 0x20 || element[last - 1] == 0x09) { last -= 1 }
            guard last - first == wanted.count else { return false }
            for i in 0..<wanted.count {
                let c = element[first + i]
                if (c >= 65 && c <= 90 ? c | 0x20 : c) != wanted[i] { return false }
            }
            return true
        }
        for byte in list.utf8 {
            if byte == UInt8(ascii: ",") {
                if matches() { return true }
                element.removeAll(keepingCapacity: true)
            } else {
                element.append(byte)
            }
        }
        return matches()
    }
}
