/// Fuzz target `head`: the request-head checks after evhttp parsed the header lines
/// (RequestHead.problem, RFC 9112 framing and Host; SPEC §3.2).
///
/// Input: one byte of flags (`& 1`: HTTP/1.1, else 1.0; `& 2`: absolute-form target), then a
/// header block as a client sends it after the request line; evhttp 2.1's own parser reads it
/// (Fuzz/Support/EvhttpHeaders.swift). Invariants, when the checks accept the head:
/// - every header name is a non-empty token;
/// - at most one Host, valid host characters only, and one present for HTTP/1.1 in origin form;
/// - at most one Authorization;
/// - Content-Length values are digits and all the same; Transfer-Encoding, if present, is one
///   lone `chunked`.
import CLibevent
@testable import GatehouseServer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let block = UnsafeRawBufferPointer(input.rest())
    guard let request = evhttpRequest(headers: block) else { return 0 }
    defer { evhttp_request_free(request) }
    let minor: Int32 = flags & 1 == 1 ? 1 : 0
    let absoluteForm = flags & 2 == 2
    let headers = HeaderList(evhttp_request_get_input_headers(request))
    guard RequestHead.problem(headers, httpMinor: minor, absoluteForm: absoluteForm) == nil else { return 0 }

    var fields: [(name: String, value: [UInt8])] = []
    headers.forEach { name, value in
        fields.append((String(cString: name), Array(UnsafeRawBufferPointer(start: value, count: strlen(value)))))
    }
    let what = "HTTP/1.\(minor) absolute=\(absoluteForm) \(Array(block).hex) -> \(fields.map { "\($0.name): \(String(decoding: $0.value, as: UTF8.self))" })"
    func values(_ name: String) -> [[UInt8]] { fields.filter { $0.name.lowercased() == name }.map(\.value) }
    for field in fields {
        expect(!field.name.isEmpty && field.name.utf8.allSatisfy(isTokenByte), "bad header name accepted: \(what)")
    }
    let hosts = values("host")
    expect(hosts.count <= 1, "several Host accepted: \(what)")
    expect(hosts.count == 1 || minor == 0 || absoluteForm, "HTTP/1.1 without Host accepted: \(what)")
    if let host = hosts.first {
        expect(!host.isEmpty && host.allSatisfy { isAlphanumeric($0) || "-.:[]_".utf8.contains($0) },
               "bad Host accepted: \(what)")
    }
    expect(values("authorization").count <= 1, "several Authorization accepted: \(what)")
    let lengths = Set(values("content-length").map { trimmed($0) })
    expect(lengths.count <= 1 && lengths.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 >= 48 && $0 <= 57 } },
           "bad or conflicting Content-Length accepted: \(what)")
    let codings = values("transfer-encoding")
    expect(codings.isEmpty || (codings.count == 1 && trimmed(codings[0]).map { $0 | 0x20 } == Array("chunked".utf8)),
           "a Transfer-Encoding other than one lone chunked accepted: \(what)")
    return 0
}

private func trimmed(_ value: [UInt8]) -> [UInt8] {
    Array(value.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed())
}

private func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
}

/// RFC 9110 tchar.
private func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}
