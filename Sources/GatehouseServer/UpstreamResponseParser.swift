import GatehousePolicy
import Glibc

/// A strict, incremental HTTP/1.1 response parser (RFC 9112) for upstream connections.
///
/// The head is collected in one buffer (at most `maxHead` bytes) and parsed in place: header
/// names and values are NUL-terminated there, so they can be handed to evhttp as C strings
/// without building Strings. The body is decoded (chunked, length, or until close) and handed
/// out as slices of the caller's input. Interim 1xx responses are skipped. What the framing
/// fields mean (and which heads are refused for them) is `UpstreamResponseFraming`'s decision.
///
/// Threading: owned by one `UpstreamConnection`, used on its worker's loop only.
final class UpstreamResponseParser {
    /// What `next` found in the input.
    enum Event {
        /// Everything given was consumed; more input is needed.
        case needMore
        /// The head is complete: `status`, `headers`… are valid until `reset`.
        case head
        /// Body bytes, a slice of the input.
        case body(UnsafeRawBufferPointer)
        /// The response is complete.
        case done
        /// The upstream's bytes are not a valid response.
        case bad
    }

    /// Limit on the response head (status line and headers).
    static let maxHead = 64 * 1024

    private enum State { case head, length, chunkSize, chunkExt, chunkData, chunkDataCR, chunkDataLF, trailers, untilClose, done }
    private var state = State.head

    private(set) var status = 0
    private(set) var minor = 1
    /// Whether the connection can carry another request after this response.
    private(set) var keepAlive = true
    /// True when the upstream's `Content-Length` may reach the client as it is: it frames the
    /// body, or it is the informational length of a HEAD or 304 answer (RFC 9110 §8.6). False
    /// without one, next to `Transfer-Encoding` (RFC 9112 §6.3: dropped), and on 1xx and 204.
    private(set) var forwardsContentLength = false
    /// A response to HEAD has no body whatever its headers say.
    var isHeadRequest = false
    /// The request asked for a WebSocket upgrade: a `101` ends the HTTP exchange (what follows
    /// is tunnel bytes). Without it a `101` is a bad answer (SPEC §12: 502).
    var upgradeRequested = false
    /// The head was a `101` to an upgrade request: the bytes after it belong to the tunnel.
    private(set) var upgraded = false

    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity = 4096
    private var used = 0
    private var reasonOffset = -1
    /// (name offset, value offset) of each header in `buffer`.
    private var headers: [(Int32, Int32)] = []
    private var remaining: UInt64 = 0
    private var chunkDigits = 0
    private var lineLength = 0
    /// An interim (1xx) answer announced a body that never comes (or asked to close): the
    /// connection is not reused after the final answer.
    private var interimAnnouncedBody = false

    init() {
        buffer = .allocate(capacity: capacity)
        headers.reserveCapacity(16)
    }

    deinit { buffer.deallocate() }

    /// Ready for the next response on the same connection.
    func reset() {
        interimAnnouncedBody = false
        upgraded = false
        resetHead()
    }

    /// Ready for the next head: after an interim answer, the final one.
    private func resetHead() {
        state = .head
        used = 0
        status = 0
        minor = 1
        keepAlive = true
        forwardsContentLength = false
        reasonOffset = -1
        headers.removeAll(keepingCapacity: true)
        remaining = 0
    }

    var isComplete: Bool { state == .done }
    /// True while no byte of a response has been seen.
    var isEmpty: Bool { state == .head && used == 0 }
    /// True for a body delimited by the connection's close.
    var readsUntilClose: Bool { state == .untilClose }

    /// The reason phrase (NUL-terminated), nil when empty.
    var reason: UnsafePointer<CChar>? {
        guard reasonOffset >= 0, buffer[reasonOffset] != 0 else { return nil }
        return UnsafeRawPointer(buffer + reasonOffset).assumingMemoryBound(to: CChar.self)
    }

    /// Calls `body` with each header's name and value as NUL-terminated C strings, in order.
    @inline(__always)
    func forEachHeader(_ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Void) {
        let base = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self)
        for (name, value) in headers { body(base + Int(name), base + Int(value)) }
    }

    /// The first value of header `lowercased`, as a String.
    func header(_ lowercased: String) -> String? {
        var found: String?
        forEachHeader { name, value in
            if found == nil && HeaderRules.nameEquals(name, lowercased) { found = String(cString: value) }
        }
        return found
    }

    /// Every value of `lowercased` joined with ", ", or nil.
    func joined(_ lowercased: StaticString) -> String? {
        var found: String?
        forEachHeader { name, value in
            guard HeaderRules.nameEquals(name, constant: lowercased) else { return }
            let v = String(cString: value)
            found = found.map { $0 + ", " + v } ?? v
        }
        return found
    }

    /// The end of the input: completes a close-delimited body; anything else unfinished is bad.
    func finishAtClose() -> Bool {
        if state == .untilClose { state = .done; return true }
        return state == .done
    }

    /// Parses from `input[offset...]`, advancing `offset` past what the event covers.
    func next(_ input: UnsafeRawBufferPointer, _ offset: inout Int) -> Event {
        while true {
            switch state {
            case .done:
                return .done
            case .head:
                switch takeHead(input, &offset) {
                case .needMore: return .needMore
                case .bad: return .bad
                case .head:
                    if status == 101 {
                        // Switching Protocols is no interim answer: it ends HTTP on the connection.
                        guard upgradeRequested else { return .bad }
                        upgraded = true
                        keepAlive = false
                        state = .done
                        return .head
                    }
                    if status < 200 {
                        // An interim response (100 Continue, 103…): the real one follows.
                        if !keepAlive { interimAnnouncedBody = true }
                        resetHead()
                        continue
                    }
                    if interimAnnouncedBody { keepAlive = false }
                    return .head
                default: return .bad
                }
            case .length:
                if remaining == 0 { state = .done; return .done }
                return takeCounted(input, &offset, then: .done)
            case .untilClose:
                let available = input.count - offset
                if available == 0 { return .needMore }
                let slice = UnsafeRawBufferPointer(rebasing: input[offset..<input.count])
                offset = input.count
                return .body(slice)
            case .chunkData:
                return takeCounted(input, &offset, then: .chunkDataCR)
            case .chunkSize, .chunkExt, .chunkDataCR, .chunkDataLF, .trailers:
                if offset >= input.count { return .needMore }
                let c = input[offset]
                offset += 1
                if !chunkFraming(c) { return .bad }
            }
        }
    }

    /// One byte of chunk framing (size line, the CRLF after data, trailers).
    /// Up to `remaining` body bytes of a counted body or chunk, as a slice of `input`; `next`
    /// becomes the state once the count is used up.
    private func takeCounted(_ input: UnsafeRawBufferPointer, _ offset: inout Int, then next: State) -> Event {
        let available = input.count - offset
        if available == 0 { return .needMore }
        let n = Int(min(UInt64(available), remaining))
        remaining -= UInt64(n)
        let slice = UnsafeRawBufferPointer(rebasing: input[offset..<offset + n])
        offset += n
        if remaining == 0 { state = next }
        return .body(slice)
    }

    private func chunkFraming(_ c: UInt8) -> Bool {
        switch state {
        case .chunkSize:
            if let digit = UpstreamResponseParser.hexValue(c) {
                guard chunkDigits < 15 else { return false }
                remaining = remaining << 4 | UInt64(digit)
                chunkDigits += 1
                return true
            }
            guard chunkDigits > 0 else { return false }
            if c == UInt8(ascii: "\n") { return chunkSizeEnded() }
            if c == UInt8(ascii: "\r") || c == UInt8(ascii: ";") || c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") {
                state = .chunkExt
                return true
            }
            return false
        case .chunkExt:
            // Chunk extensions are ignored up to the end of the line.
            if c == UInt8(ascii: "\n") { return chunkSizeEnded() }
            return true
        case .chunkDataCR:
            if c == UInt8(ascii: "\r") { state = .chunkDataLF; return true }
            if c == UInt8(ascii: "\n") { startChunk(); return true }
            return false
        case .chunkDataLF:
            guard c == UInt8(ascii: "\n") else { return false }
            startChunk()
            return true
        case .trailers:
            // Trailer fields are skipped; an empty line ends the message.
            if c == UInt8(ascii: "\n") {
                if lineLength == 0 { state = .done }
                lineLength = 0
            } else if c != UInt8(ascii: "\r") {
                lineLength += 1
            }
            return true
        default:
            return false
        }
    }

    private func startChunk() {
        state = .chunkSize
        remaining = 0
        chunkDigits = 0
    }

    private func chunkSizeEnded() -> Bool {
        if remaining == 0 {
            state = .trailers
            lineLength = 0
        } else {
            state = .chunkData
        }
        return true
    }

    @inline(__always)
    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: the head

    /// Collects head bytes until the empty line, then parses them.
    private func takeHead(_ input: UnsafeRawBufferPointer, _ offset: inout Int) -> Event {
        let start = offset
        var end = -1
        var i = start
        // Look for LF (CR)? LF, also across the boundary with what is already collected: from
        // one LF to the next with `memchr` (a byte-at-a-time loop cost ~7 instructions a byte).
        while i < input.count {
            guard let lf = memchr(input.baseAddress! + i, 10, input.count - i) else { break }
            i = UnsafeRawPointer(lf) - input.baseAddress!
            var j = i - 1
            var prev: UInt8 = 0
            if j >= start { prev = input[j] } else if used + (j - start) >= 0 { prev = buffer[used + (j - start)] }
            if prev == UInt8(ascii: "\r") {
                j -= 1
                if j >= start { prev = input[j] } else if used + (j - start) >= 0 { prev = buffer[used + (j - start)] } else { prev = 0 }
            }
            if prev == UInt8(ascii: "\n") && (used + (i - start)) > 0 { end = i + 1; break }
            i += 1
        }
        let take = (end >= 0 ? end : input.count) - start
        guard used + take <= UpstreamResponseParser.maxHead else { return .bad }
        if used + take + 1 > capacity {
            var newCapacity = capacity
            while newCapacity < used + take + 1 { newCapacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: buffer, count: used)
            buffer.deallocate()
            buffer = grown
            capacity = newCapacity
        }
        if take > 0 {
            UnsafeMutableRawPointer(buffer + used).copyMemory(from: input.baseAddress! + start, byteCount: take)
        }
        used += take
        offset = start + take
        guard end >= 0 else { return .needMore }
        return parseHead() ? .head : .bad
    }

    /// Parses `buffer[0..<used]` in place (it ends with the empty line).
    private func parseHead() -> Bool {
        guard let lineEnd = parseStatusLine(), let framing = parseFields(from: lineEnd + 1) else { return false }
        // Message body length (RFC 9112 §6.3).
        guard let decision = framing.decide(status: status, minor: minor, isHeadRequest: isHeadRequest) else { return false }
        keepAlive = decision.keepAlive
        forwardsContentLength = decision.forwardsContentLength
        switch decision.body {
        case .none: state = .done
        case .chunked: startChunk()
        case .length(let n): remaining = n; state = .length
        case .untilClose: state = .untilClose
        }
        return true
    }

    /// The status line, `HTTP/1.x SP 3DIGIT [SP reason] (CR)? LF`: sets `minor`, `status` and
    /// `reasonOffset` (the reason NUL-terminated in place); the index of its LF, or nil.
    private func parseStatusLine() -> Int? {
        var lineEnd = 0
        while buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
        let line = lineEnd > 0 && buffer[lineEnd - 1] == UInt8(ascii: "\r") ? lineEnd - 1 : lineEnd
        guard line >= 12,
              buffer[0] == UInt8(ascii: "H"), buffer[1] == UInt8(ascii: "T"), buffer[2] == UInt8(ascii: "T"),
              buffer[3] == UInt8(ascii: "P"), buffer[4] == UInt8(ascii: "/"), buffer[5] == UInt8(ascii: "1"),
              buffer[6] == UInt8(ascii: "."), buffer[7] == UInt8(ascii: "0") || buffer[7] == UInt8(ascii: "1"),
              buffer[8] == UInt8(ascii: " ") else { return nil }
        minor = Int(buffer[7] - UInt8(ascii: "0"))
        var code = 0
        for k in 9..<12 {
            let d = buffer[k]
            guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { return nil }
            code = code * 10 + Int(d - UInt8(ascii: "0"))
        }
        guard code >= 100 else { return nil }
        if line > 12 {
            guard buffer[12] == UInt8(ascii: " ") else { return nil }
            for k in 13..<line where buffer[k] < 0x20 && buffer[k] != 0x09 || buffer[k] == 0x7F { return nil }
            reasonOffset = 13
        } else {
            reasonOffset = 12
        }
        buffer[line] = 0
        status = code
        return lineEnd
    }

    /// The header fields from `start` to the empty line: each NUL-terminated in place and listed
    /// in `headers`, the framing fields noted. nil for a malformed field: an obs-fold, a leading
    /// space, a name that is not a token, a control byte in a value (RFC 9112 §5), or framing
    /// fields that contradict each other.
    private func parseFields(from start: Int) -> UpstreamResponseFraming? {
        // The list, the buffer and its length as locals: each access to a stored property of a
        // class is a dynamic exclusivity check (`swift_beginAccess`, ~70 instructions), and this
        // loop made one per field line.
        var list: [(Int32, Int32)] = []
        swap(&list, &headers)
        defer { swap(&list, &headers) }
        list.removeAll(keepingCapacity: true)
        let buffer = self.buffer, used = self.used
        var framing = UpstreamResponseFraming()
        var p = start
        while p < used {
            guard let lf = memchr(buffer + p, 10, used - p) else { return nil }
            let e = UnsafeMutableRawPointer(lf).assumingMemoryBound(to: UInt8.self) - buffer
            let lineStop = e > p && buffer[e - 1] == UInt8(ascii: "\r") ? e - 1 : e
            if lineStop == p { break }   // the empty line
            // The name: tchar up to the colon (':' is not tchar).
            let colon = p + PlainBytes.tokenPrefixLength(buffer + p, lineStop - p)
            guard colon > p, colon < lineStop, buffer[colon] == UInt8(ascii: ":") else { return nil }
            var v = colon + 1
            while v < lineStop && (buffer[v] == UInt8(ascii: " ") || buffer[v] == UInt8(ascii: "\t")) { v += 1 }
            var ve = lineStop
            while ve > v && (buffer[ve - 1] == UInt8(ascii: " ") || buffer[ve - 1] == UInt8(ascii: "\t")) { ve -= 1 }
            guard PlainBytes.isFieldValue(UnsafeBufferPointer(start: buffer + v, count: ve - v)) else { return nil }
            buffer[colon] = 0
            buffer[ve] = 0
            list.append((Int32(p), Int32(v)))
            let name = UnsafeRawPointer(buffer + p).assumingMemoryBound(to: CChar.self)
            if let kind = UpstreamResponseParser.framingKind(name, length: colon - p) {
                guard framing.note(kind, UnsafeRawBufferPointer(start: buffer + v, count: ve - v)) else { return nil }
            }
            p = e + 1
        }
        return framing
    }

    /// Which framing field `name` is, if any.
    @inline(__always)
    /// (`length`: the name's bytes; most names are told apart by it alone.)
    private static func framingKind(_ name: UnsafePointer<CChar>, length: Int) -> UpstreamResponseFraming.FieldKind? {
        switch length {
        case 14: return HeaderRules.nameEquals(name, constant: "content-length") ? .contentLength : nil
        case 17: return HeaderRules.nameEquals(name, constant: "transfer-encoding") ? .transferEncoding : nil
        case 10: return HeaderRules.nameEquals(name, constant: "connection") ? .connection : nil
        default: return nil
        }
    }
}
