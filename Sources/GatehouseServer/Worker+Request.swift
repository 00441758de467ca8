import CLibevent
import CEvhttpHook
import GatehouseCore
import GatehouseConfig
import GatehousePolicy

typealias Request = UnsafeMutablePointer<evhttp_request>

/// The request path of SPEC §3 on a worker's loop: limits, request id, path policy, route,
/// decision — then forward or refuse.
extension Worker {
    func handle(_ req: Request) {
        let config = snapshot.config
        var log = AccessLogRecord()
        let startNs = Clock.monotonicNs()
        describe(req, into: &log, config: config)
        let conn = connection(for: evhttp_request_get_connection(req))
        _ = conn

        if req.pointee.headers_size > config.server.maxHeaderBytes {
            return refuse(req, .headersTooLarge, .headersTooLarge, log: &log, startNs: startNs)
        }
        if evbuffer_get_length(evhttp_request_get_input_buffer(req)) > config.server.maxBodyBytes {
            return refuse(req, .payloadTooLarge, .payloadTooLarge, log: &log, startNs: startNs)
        }
        guard let target = PathNormalizer.normalize(target: log.rawTarget, policy: config.server.pathPolicy) else {
            return refuse(req, .badRequest, .pathRejected, log: &log, startNs: startNs)
        }
        log.path = target.path
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let host = target.authority ?? headers["Host"]
        let facts = RequestFacts(method: log.method, target: target, host: host, authorization: headers["Authorization"])
        switch Decide.plan(facts, config: config) {
        case let .refuse(error, reason, route, status, bearer):
            log.route = route?.name
            log.upstream = route?.upstream
            if error == .unauthorized, facts.authorization != nil { log.auth = bearer ? .jwt : .none }
            refuse(req, error, reason, status: status, bearerPresented: bearer, log: &log, startNs: startNs)
        case let .forward(route, auth, subject):
            guard let upstream = config.upstreams[route.upstream] else {
                return refuse(req, .badGateway, .upstreamError, log: &log, startNs: startNs)
            }
            log.route = route.name
            log.upstream = upstream.name
            log.auth = auth
            log.subject = subject
            let exchange = ProxyExchange(worker: self, request: req, route: route, upstream: upstream,
                                         target: target, host: host, log: log, startNs: startNs, connection: conn)
            exchange.start()
        }
    }

    /// Fills the facts of the request line and the client into the log record.
    private func describe(_ req: Request, into log: inout AccessLogRecord, config: GatewayConfig) {
        log.startMs = Clock.wallMs()
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        if let incoming = headers["X-Request-Id"], RequestID.isAcceptable(incoming) {
            log.requestID = incoming
        } else {
            log.requestID = ids.next()
        }
        log.client = peerAddress(of: req)
        if !config.server.trustedProxies.isEmpty {
            log.client = ForwardedFor.clientAddress(peer: log.client, incoming: headers.joined("X-Forwarded-For"),
                                                    trusted: config.server.trustedProxies)
        }
        log.method = Worker.methodName(evhttp_request_get_command(req))
        if let uri = evhttp_request_get_uri(req) { log.rawTarget = String(cString: uri) }
        log.httpVersion = "HTTP/\(req.pointee.major).\(req.pointee.minor)"
        log.userAgent = headers["User-Agent"]
        log.referer = headers["Referer"]
    }

    func peerAddress(of req: Request) -> String {
        guard let evcon = evhttp_request_get_connection(req) else { return "" }
        var address: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(evcon, &address, &port)
        return address.map { String(cString: $0) } ?? ""
    }

    static func methodName(_ cmd: evhttp_cmd_type) -> String {
        switch cmd {
        case EVHTTP_REQ_GET: return "GET"
        case EVHTTP_REQ_POST: return "POST"
        case EVHTTP_REQ_HEAD: return "HEAD"
        case EVHTTP_REQ_PUT: return "PUT"
        case EVHTTP_REQ_DELETE: return "DELETE"
        case EVHTTP_REQ_OPTIONS: return "OPTIONS"
        case EVHTTP_REQ_TRACE: return "TRACE"
        case EVHTTP_REQ_CONNECT: return "CONNECT"
        case EVHTTP_REQ_PATCH: return "PATCH"
        default: return "UNKNOWN"
        }
    }

    /// Answers with the uniform error (SPEC §3.1) and writes the access-log line.
    func refuse(_ req: Request, _ error: GatewayError, _ reason: Reason, status: Int? = nil,
                bearerPresented: Bool = false, closeConnection: Bool = false,
                log: inout AccessLogRecord, startNs: UInt64) {
        let status = status ?? error.status
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Content-Type", "application/json")
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        if status == 401 {
            let challenge: String
            switch (error, bearerPresented) {
            case (.forbidden, _): challenge = "Bearer realm=\"gatehouse\", error=\"insufficient_scope\""
            case (_, true): challenge = "Bearer realm=\"gatehouse\", error=\"invalid_token\""
            default: challenge = "Bearer realm=\"gatehouse\""
            }
            out.set("WWW-Authenticate", challenge)
        } else if error == .forbidden {
            out.set("WWW-Authenticate", "Bearer realm=\"gatehouse\", error=\"insufficient_scope\"")
        }
        if closeConnection || draining { out.set("Connection", "close") }
        let body = error.body(status: status, requestID: log.requestID)
        let buffer = evbuffer_new()!
        var bytes = body
        bytes.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        log.status = status
        log.bytesSent = body.utf8.count
        log.decision = (status >= 500 || error == .badRequest || error == .payloadTooLarge || error == .headersTooLarge) ? .error : .deny
        if error == .notFound { log.decision = .deny }
        log.reason = reason
        evhttp_send_reply(req, Int32(status), Worker.reasonPhrase(status), buffer)
        evbuffer_free(buffer)
        finishLog(&log, startNs: startNs)
    }

    /// Writes the access-log line and counts the request.
    func finishLog(_ log: inout AccessLogRecord, startNs: UInt64) {
        log.durationMs = Double(Clock.monotonicNs() - startNs) / 1_000_000
        let line: String
        switch snapshot.config.accessLog.format {
        case .json: line = log.json(timestamp: Clock.rfc3339(ms: log.startMs))
        case .combined: line = log.combined(clfTimestamp: Clock.clf(ms: log.startMs))
        }
        shared.log.append(line)
        shared.metrics.record(worker: index, log)
    }

    /// Answers a request that evhttp refused by itself (see CEvhttpHook): oversize head -> 431,
    /// oversize body -> 413, anything else -> 400. The connection is closed afterwards, as
    /// evhttp would, since its framing can no longer be trusted.
    func handleEvhttpError(_ req: Request, code: Int) {
        var log = AccessLogRecord()
        let startNs = Clock.monotonicNs()
        log.startMs = Clock.wallMs()
        log.requestID = ids.next()
        log.client = peerAddress(of: req)
        log.method = Worker.methodName(evhttp_request_get_command(req))
        log.rawTarget = "-"
        var error = GatewayError.badRequest
        var reason = Reason.malformedRequest
        if code == 413 {
            error = .payloadTooLarge
            reason = .payloadTooLarge
        } else if code == 400, let evcon = evhttp_request_get_connection(req) {
            let pending = evbuffer_get_length(bufferevent_get_input(evhttp_connection_get_bufferevent(evcon)))
            if req.pointee.headers_size + pending > snapshot.config.server.maxHeaderBytes {
                error = .headersTooLarge
                reason = .headersTooLarge
            }
        }
        refuse(req, error, reason, closeConnection: true, log: &log, startNs: startNs)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 204: return "No Content"
        case 302: return "Found"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 413: return "Payload Too Large"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
