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
/// system trust store (and its host name). Used for JWKS and discovery documents (SPEC §5.2,
/// §14.1) and introspection calls (SPEC §14.3, ``postForm(_:body:headers:timeoutSeconds:deadlineMs:completion:)``).
///
/// **Bounded** (SPEC §3.2 Key fetches): a response head over ``maxHead`` bytes or a body over
/// ``maxBody`` fails the fetch as soon as evhttp has read that much (nothing more is kept), and
/// a fetch that has not completed ``deadlineMs`` after it started fails then, however steadily
/// bytes trickle in (evhttp's own timeout is one of inactivity, which a byte every few seconds
/// resets). A failed fetch is retried by its caller like any other failure.
///
/// Threading: create and use on one loop; completions run on that loop.
final class HTTPFetcher {
    private let base: OpaquePointer
    private let dns: OpaquePointer?
    private let tls: OpaquePointer?
    /// Most body bytes of a response (1 MiB).
    static let maxBody = 1 << 20
    /// Most bytes of a response's status line and header lines (64 KiB).
    static let maxHead = 64 << 10
    /// Most time from the start of a fetch to its complete response (10 s).
    static let deadlineMs: Int64 = 10_000

    init(base: OpaquePointer) {
        self.base = base
        dns = evdns_base_new(base, Int32(EVDNS_BASE_INITIALIZE_NAMESERVERS))
        tls = gh_ssl_client_ctx_new()
    }

    deinit {
        if let dns { evdns_base_free(dns, 0) }
        if let tls { SSL_CTX_free(tls) }
    }

    /// GETs `url`; `completion` runs exactly once, on this loop (possibly before `get` returns).
    func get(_ url: String, timeoutSeconds: Int32 = 10, deadlineMs: Int64 = HTTPFetcher.deadlineMs,
             completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
        send(url, post: nil, headers: [("Accept", "application/json, application/jwk-set+json")],
             timeoutSeconds: timeoutSeconds, deadlineMs: deadlineMs, completion: completion)
    }

    /// POSTs `body` (`application/x-www-form-urlencoded`) to `url` with `headers` added, under
    /// the same caps and deadline as ``get(_:timeoutSeconds:deadlineMs:completion:)`` (RFC 7662
    /// introspection). `completion` runs exactly once, on this loop.
    func postForm(_ url: String, body: [UInt8], headers: [(String, String)], timeoutSeconds: Int32 = 5,
                  deadlineMs: Int64 = 5_000, completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
        send(url, post: body, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
             timeoutSeconds: timeoutSeconds, deadlineMs: deadlineMs, completion: completion)
    }

    /// One GET (`post` nil) or POST; header values must hold no CR, LF or NUL (the callers' are fixed
    /// or configuration values checked at load).
    private func send(_ url: String, post: [UInt8]?, headers extra: [(String, String)], timeoutSeconds: Int32,
                      deadlineMs: Int64, completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
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

        guard let evcon = connection(scheme: scheme, host: host, port: port) else {
            return completion(.failure(FetchError(description: "cannot connect to \(host)")))
        }
        evhttp_connection_set_timeout(evcon, timeoutSeconds)
        evhttp_connection_set_max_headers_size(evcon, HTTPFetcher.maxHead)
        evhttp_connection_set_max_body_size(evcon, HTTPFetcher.maxBody)
        evhttp_connection_set_retries(evcon, 0)

        let job = FetchJob(evcon: evcon, base: base, url: url, completion: completion)
        // The request holds one reference until its callback (or until the deadline cancels it).
        let request = evhttp_request_new({ req, arg in
            Unmanaged<FetchJob>.fromOpaque(arg!).takeRetainedValue().done(req)
        }, Unmanaged.passRetained(job).toOpaque())!
        evhttp_request_set_error_cb(request, { error, arg in
            Unmanaged<FetchJob>.fromOpaque(arg!).takeUnretainedValue().error = error
        })
        let headers = HeaderList(evhttp_request_get_output_headers(request))
        headers.add("Host", port == (scheme == "https" ? 443 : 80) ? host : "\(host):\(port)")
        for (name, value) in extra { headers.add(name, value) }
        headers.add("User-Agent", "gatehouse")
        if let post {
            // evhttp adds Content-Length for a POST from the output buffer.
            _ = post.withUnsafeBytes { evbuffer_add(evhttp_request_get_output_buffer(request), $0.baseAddress, $0.count) }
        }
        job.start(request, deadlineMs: deadlineMs)   // before the request: it may complete at once
        if evhttp_make_request(evcon, request, post == nil ? EVHTTP_REQ_GET : EVHTTP_REQ_POST, target) != 0 {
            job.notSent("cannot send the request to \(host)")
        }
    }

    private func connection(scheme: String, host: String, port: Int32) -> OpaquePointer? {
        guard scheme == "https" else { return evhttp_connection_base_new(base, dns, host, UInt16(port)) }
        guard let tls, let ssl = gh_ssl_client_new(tls, host),
              let bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                       Int32(BEV_OPT_CLOSE_ON_FREE.rawValue | BEV_OPT_DEFER_CALLBACKS.rawValue))
        else { return nil }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1)
        return evhttp_connection_base_bufferevent_new(base, dns, bev, host, UInt16(port))
    }
}

/// One fetch in flight, from `start` to exactly one completion: evhttp's request callback
/// (``done(_:)``), the deadline (``expire()``), or a request that could not be sent
/// (``notSent(_:)``).
///
/// References: the request holds one (released by its callback, or by ``expire()`` because a
/// cancelled request's callback never runs — libevent 2.1.12 `evhttp_connection_fail_` with
/// `EVREQ_HTTP_REQUEST_CANCEL` calls only the error callback, then frees the request); the
/// armed deadline timer holds another (released when it fires or is removed).
private final class FetchJob {
    let evcon: OpaquePointer
    let base: OpaquePointer
    let url: String
    let completion: (Result<FetchedDocument, FetchError>) -> Void
    var error: evhttp_request_error?
    private var request: UnsafeMutablePointer<evhttp_request>?
    private var deadline: OpaquePointer?
    private var deadlineMs: Int64 = 0
    private var finished = false

    init(evcon: OpaquePointer, base: OpaquePointer, url: String, completion: @escaping (Result<FetchedDocument, FetchError>) -> Void) {
        self.evcon = evcon
        self.base = base
        self.url = url
        self.completion = completion
    }

    /// Arms the deadline for `request`.
    func start(_ request: UnsafeMutablePointer<evhttp_request>, deadlineMs: Int64) {
        self.request = request
        self.deadlineMs = deadlineMs
        let timer = gh_timer_new(base, 0, { _, _, arg in
            Unmanaged<FetchJob>.fromOpaque(arg!).takeRetainedValue().expire()
        }, Unmanaged.passRetained(self).toOpaque())
        deadline = timer
        _ = gh_timer_add_ms(timer, max(deadlineMs, 1))
    }

    /// evhttp's request callback: the response, or NULL / no status on failure.
    func done(_ req: UnsafeMutablePointer<evhttp_request>?) {
        disarm()
        request = nil
        guard !finished else { return }
        finished = true
        freeConnectionLater()
        guard let req, evhttp_request_get_response_code(req) != 0 else {
            return completion(.failure(FetchError(description: "\(url): \(failureText)")))
        }
        let status = Int(evhttp_request_get_response_code(req))
        let buffer = evhttp_request_get_input_buffer(req)
        let length = evbuffer_get_length(buffer)
        var body = [UInt8](repeating: 0, count: length)
        _ = body.withUnsafeMutableBytes { evbuffer_copyout(buffer, $0.baseAddress, length) }
        let cacheControl = HeaderList(evhttp_request_get_input_headers(req))["Cache-Control"]
        completion(.success(FetchedDocument(status: status, body: body, maxAgeSeconds: HTTPFetcher.maxAge(cacheControl))))
    }

    /// The deadline fired (the timer's reference was taken by the caller): cancel the request,
    /// whose callback then never runs, so its reference is released here.
    private func expire() {
        if let deadline { event_free(deadline) }
        deadline = nil
        guard !finished, let request else { return }
        finished = true
        self.request = nil
        evhttp_cancel_request(request)   // runs the error callback (REQUEST_CANCEL), frees the request
        Unmanaged.passUnretained(self).release()
        freeConnectionLater()
        completion(.failure(FetchError(description: "\(url): no complete response within \(deadlineMs / 1000) s")))
    }

    /// `evhttp_make_request` failed: on these paths (2.1.12) no callback runs and the request
    /// is left to us; it is not freed here, because the out-of-memory path frees it itself.
    func notSent(_ why: String) {
        disarm()
        guard !finished else { return }
        finished = true
        request = nil
        Unmanaged.passUnretained(self).release()
        freeConnectionLater()
        completion(.failure(FetchError(description: why)))
    }

    private var failureText: String {
        switch error {
        case EVREQ_HTTP_TIMEOUT?: return "timed out"
        case EVREQ_HTTP_INVALID_HEADER?:   // evhttp's verdict on a head over the limit, too
            return "response head malformed or over \(HTTPFetcher.maxHead / 1024) KiB"
        case EVREQ_HTTP_DATA_TOO_LONG?:
            return "response body over \(HTTPFetcher.maxBody >> 20) MiB"
        default: return "connection or TLS verification failed"
        }
    }

    /// Removes an armed deadline and drops its reference.
    private func disarm() {
        guard let deadline else { return }
        event_free(deadline)
        self.deadline = nil
        Unmanaged.passUnretained(self).release()
    }

    /// Frees the connection on the next turn, outside any of its own callbacks.
    private func freeConnectionLater() {
        event_base_once(base, -1, gh_ev_timeout(), { _, _, arg in
            evhttp_connection_free(OpaquePointer(arg))
        }, UnsafeMutableRawPointer(evcon), nil)
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
