/// Fuzz target `upstream`: the upstream response parser (UpstreamResponseParser, RFC 9112; an
/// upstream's bytes are hostile input too, SPEC §3.2).
///
/// Input: one byte of flags (`& 1`: the request was HEAD; `& 2`: it asked for a WebSocket
/// upgrade, SPEC §12), two bytes choosing a split point,
/// then the bytes an upstream sends. They are parsed three ways: in one piece, in two pieces
/// split at the chosen point, and one byte at a time. Invariants:
/// - all three give the same result: the head (status, reason, headers, keep-alive), the body
///   bytes, whether and where the response ended (bytes after it belong to no one), or that it
///   was refused, and what the end of input means;
/// - a complete response framed by Content-Length has exactly that many body bytes;
/// - a response with both Transfer-Encoding and Content-Length never leaves the connection
///   reusable (SPEC §3.2, response splitting), nor does a body that runs until the close;
/// - a `101` ends the parse right after its head when an upgrade was asked for (the rest is
///   tunnel bytes; the connection is never reused), and is refused when none was.
@testable import GatehouseServer

private struct Parsed: Equatable {
    var heads: [String] = []
    var body: [UInt8] = []
    /// "done at N", "bad", or "needMore".
    var end = "needMore"
    var finishAtClose: Bool? = nil
    var keepAlive = true
    var contentLength: [String] = []
    var transferEncoding = false
}

private func parse(_ bytes: UnsafeRawBufferPointer, head: Bool, upgrade: Bool, pieces: [Range<Int>]) -> Parsed {
    let parser = UpstreamResponseParser()
    parser.isHeadRequest = head
    parser.upgradeRequested = upgrade
    var result = Parsed()
    feed: for piece in pieces {
        let input = UnsafeRawBufferPointer(rebasing: bytes[piece])
        var offset = 0
        while true {
            switch parser.next(input, &offset) {
            case .needMore:
                continue feed
            case .head:
                var head = "\(parser.status) \(parser.reason.map { String(cString: $0) } ?? "-") keepAlive=\(parser.keepAlive)"
                result.contentLength = []
                result.transferEncoding = false
                parser.forEachHeader { name, value in
                    let name = String(cString: name), value = String(cString: value)
                    head += "\n\(name): \(value)"
                    if name.lowercased() == "content-length" { result.contentLength.append(value) }
                    if name.lowercased() == "transfer-encoding" { result.transferEncoding = true }
                }
                result.heads.append(head)
                if parser.upgraded {
                    expect(upgrade && parser.status == 101 && !parser.keepAlive, "upgraded without an upgrade 101")
                    result.end = "upgraded at \(piece.lowerBound + offset)"
                    return result
                }
                expect(parser.status != 101, "a 101 head handed out as an ordinary answer")
            case .body(let slice):
                result.body.append(contentsOf: slice)
            case .done:
                result.end = "done at \(piece.lowerBound + offset)"
                result.keepAlive = parser.keepAlive
                return result
            case .bad:
                result.end = "bad"
                return result
            }
        }
    }
    result.keepAlive = parser.keepAlive
    result.finishAtClose = parser.finishAtClose()
    return result
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUpstream(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let split = Int(input.byte()) << 8 | Int(input.byte())
    let rest = input.rest()
    let bytes = UnsafeRawBufferPointer(rest)
    let count = bytes.count
    let head = flags & 1 == 1
    let upgrade = flags & 2 == 2
    let at = count == 0 ? 0 : split % (count + 1)

    let whole = parse(bytes, head: head, upgrade: upgrade, pieces: [0..<count])
    let what = "HEAD=\(head) upgrade=\(upgrade) split at \(at) of \(Array(rest).hex)"
    let two = parse(bytes, head: head, upgrade: upgrade, pieces: [0..<at, at..<count])
    expect(two == whole, "split in two differs: \(what)\nwhole: \(whole)\nsplit: \(two)")
    if count <= 4096 {
        let single = parse(bytes, head: head, upgrade: upgrade, pieces: (0..<count).map { $0..<($0 + 1) })
        expect(single == whole, "byte by byte differs: \(what)\nwhole: \(whole)\nbytes: \(single)")
    }
    expect(whole.body.count <= count, "more body than input: \(what)")
    if whole.end.hasPrefix("done"), !head, let length = whole.contentLength.first, !whole.transferEncoding,
       let status = whole.heads.last.flatMap({ Int($0.prefix(3)) }), status >= 200, status != 204, status != 304 {
        expect(UInt64(length) == UInt64(whole.body.count), "Content-Length \(length) but \(whole.body.count) body bytes: \(what)")
    }
    if whole.end.hasPrefix("done"), whole.transferEncoding, !whole.contentLength.isEmpty {
        expect(!whole.keepAlive, "Transfer-Encoding with Content-Length left the connection reusable: \(what)")
    }
    if whole.finishAtClose == true {
        expect(!whole.keepAlive, "a body ended by the close left the connection reusable: \(what)")
    }
    return 0
}
