import CLibevent
import Glibc

/// A fetched document: status, body and the `Cache-Control: max-age` it carried.
struct FetchedDocument {
    var status: Int
    var body: [UInt8]
    var maxAgeSeconds: Int?
}

struct FetchError: Error, CustomStringConvertible {
    var description: String
}

/// Fetches `http://` and `https://` URLs on an event loop without ever blocking it: names are
/// resolved by evdns, TLS goes through `bufferevent_openssl` and verifies the peer against the
/// system trust store (and its host name). Used for JWKS (SPEC §5.2).
///
/// Threading: create and use on one loop; completions run on that loop.
final class HTTPFetcher {
    private let base: OpaquePointer
    private let dns: OpaquePointer?
    private let tls: OpaquePointer?
    static let maxBody = 1 << 20

    init(base: OpaquePointer) {
        self.base = base
        dns = evdns_base_new(base, Int32(EVDNS_BASE_INITIALIZE_NAMESERVERS))
        tls = gh_ssl_client_ctx_new()
    }

    deinit {
        if let dns { evdns_base_free(dns, 0) }
        if let tls { SSL_CTX_free(tls) }
    }

    /// GETs `url`; `completion` runs exactly once, on this loop.
    func get(_ url: String, timeoutSeconds: Int32 = 10, completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
        guard let uri = evhttp_uri_parse(url) else { return completion(.failure(FetchError(description: "bad URL \(url)"))) }
        defer { evhttp_uri_free(uri) }
        let scheme = evhttp_uri_get_scheme(uri).map { String(cString: $0).lowercased() } ?? ""
        guard scheme == "http" || scheme == "https", let hostPtr = evhttp_uri_get_host(uri) else {
            return completion(.failure(FetchError(description: "unsupported URL \(url)")))
        }
        let host = String(cString: hostPtr)
        var port = evhttp_uri_get_port(uri)
        if port < 0 { port = scheme == "https" ? 443 : 80 }
        var target = evhttp_uri_get_path(uri).map { String(cString: $0) } ?? "/"
        if target.isEmpty { target = "/" }
        if let query = evhttp_uri_get_query(uri) { target += "?" + String(cString: query) }

        let evcon: OpaquePointer?
        if scheme == "https" {
            guard let tls, let ssl = gh_ssl_client_new(tls, host),
                  let bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                           Int32(BEV_OPT_CLOSE_ON_FREE.rawValue | BEV_OPT_DEFER_CALLBACKS.rawValue))
            else { return completion(.failure(FetchError(description: "cannot set up TLS for \(host)"))) }
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
            evcon = evhttp_connection_base_bufferevent_new(base, dns, bev, host, UInt16(port))
        } else {
            evcon = evhttp_connection_base_new(base, dns, host, UInt16(port))
        }
        guard let evcon else { return completion(.failure(FetchError(description: "cannot connect to \(host)"))) }
        evhttp_connection_set_timeout(evcon, timeoutSeconds)
        evhttp_connection_set_max_body_size(evcon, HTTPFetcher.maxBody)
        evhttp_connection_set_retries(evcon, 0)

        let job = FetchJob(evcon: evcon, base: base, url: url, completion: completion)
        let request = evhttp_request_new({ req, arg in
            Unmanaged<FetchJob>.fromOpaque(arg!).takeRetainedValue().done(req)
        }, Unmanaged.passRetained(job).toOpaque())!
        evhttp_request_set_error_cb(request, { error, arg in
            Unmanaged<FetchJob>.fromOpaque(arg!).takeUnretainedValue().error = error
        })
        let headers = HeaderList(evhttp_request_get_output_headers(request))
        headers.add("Host", port == (scheme == "https" ? 443 : 80) ? host : "\(host):\(port)")
        headers.add("Accept", "application/json, application/jwk-set+json")
        headers.add("User-Agent", "gatehouse")
        if evhttp_make_request(evcon, request, EVHTTP_REQ_GET, target) != 0 {
            completion(.failure(FetchError(description: "cannot send the request to \(host)")))
        }
    }
}

/// One fetch in flight; retained by its request until evhttp's completion callback.
private final class FetchJob {
    let evcon: OpaquePointer
    let base: OpaquePointer
    let url: String
    let completion: (Result<FetchedDocument, FetchError>) -> Void
    var error: evhttp_request_error?

    init(evcon: OpaquePointer, base: OpaquePointer, url: String, completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
        self.evcon = evcon
        self.base = base
        self.url = url
        self.completion = completion
    }

    func done(_ req: UnsafeMutablePointer<evhttp_request>?) {
        defer {
            // Free the connection on the next turn, outside its own callback.
            event_base_once(base, -1, gh_ev_timeout(), { _, _, arg in
                evhttp_connection_free(OpaquePointer(arg))
            }, UnsafeMutableRawPointer(evcon), nil)
        }
        guard let req, evhttp_request_get_response_code(req) != 0 else {
            let why = error == EVREQ_HTTP_TIMEOUT ? "timed out" : "connection or TLS verification failed"
            return completion(.failure(FetchError(description: "\(url): \(why)")))
        }
        let status = Int(evhttp_request_get_response_code(req))
        let buffer = evhttp_request_get_input_buffer(req)
        let length = evbuffer_get_length(buffer)
        var body = [UInt8](repeating: 0, count: length)
        _ = body.withUnsafeMutableBytes { evbuffer_copyout(buffer, $0.baseAddress, length) }
        let cacheControl = HeaderList(evhttp_request_get_input_headers(req))["Cache-Control"]
        completion(.success(FetchedDocument(status: status, body: body, maxAgeSeconds: HTTPFetcher.maxAge(cacheControl))))
    }
}

extension HTTPFetcher {
    /// `max-age` of a Cache-Control value (RFC 9111 §5.2.2.1), or nil.
    static func maxAge(_ value: String?) -> Int? {
        guard let value else { return nil }
        for directive in value.split(separator: ",") {
            let parts = directive.trimmingSpaces().split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "max-age" {
                return Int(parts[1].trimmingSpaces().trimmingCharacters(in: "\""))
            }
        }
        return nil
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
