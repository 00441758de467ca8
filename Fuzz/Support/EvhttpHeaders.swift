import CLibevent

/// evhttp 2.1's own header-block parser, `evhttp_parse_headers_` (exported by libevent, declared
/// only in its internal http-internal.h): the fuzz targets `head` and `rawhead` read header
/// lines exactly as the server's evhttp does, obs-fold continuations included.
@_silgen_name("evhttp_parse_headers_")
private func evhttpParseHeaders(_ request: UnsafeMutablePointer<evhttp_request>, _ buffer: OpaquePointer) -> Int32

/// A request whose input headers evhttp parsed from `block` (the bytes after the request line),
/// or nil when evhttp refused them or wanted more bytes. Free it with `evhttp_request_free`.
func evhttpRequest(headers block: UnsafeRawBufferPointer) -> UnsafeMutablePointer<evhttp_request>? {
    guard let request = evhttp_request_new(nil, nil) else { fatalError("evhttp_request_new") }
    guard let buffer = evbuffer_new() else { fatalError("evbuffer_new") }
    defer { evbuffer_free(buffer) }
    if let base = block.baseAddress { evbuffer_add(buffer, base, block.count) }
    // 1 is ALL_DATA_READ (0 MORE_DATA_EXPECTED, -1 DATA_CORRUPTED, -3 DATA_TOO_LONG).
    guard evhttpParseHeaders(request, buffer) == 1 else {
        evhttp_request_free(request)
        return nil
    }
    return request
}
