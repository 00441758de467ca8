import CLibevent
import CEvhttpHook
import GatehouseCore
import GatehouseConfig
import GatehouseSessions
import GatehousePolicy

typealias Request = UnsafeMutablePointer<evhttp_request>

/// The request path of SPEC §3 on a worker's loop: limits, request id, path policy, route,
/// decision — then forward or refuse.
extension Worker {
    func handle(_ req: Request) {
        let snapshot = self.snapshot  // not `let config = …`: a copy of the config retains each of its fields
        var log = AccessLogRecord()
        let startNs = Clock.monotonicNs()
        describe(req, into: &log, trustedProxies: snapshot.config.server.trustedProxies)
        let conn = connection(for: evhttp_request_get_connection(req))
        defer { flushClient(conn) }
        disarmHeaderTimer(conn)
        if let early = conn.earlyRefusal {
            conn.earlyRefusal = nil
            return answerEarlyRefusal(early, req: req, log: &log, startNs: startNs, connection: conn)
        }
        let bodyLength = evbuffer_get_length(evhttp_request_get_input_buffer(req))
        if let (error, reason, close) = precheck(req, rawTarget: log.rawTarget, bodyLength: bodyLength, snapshot: snapshot) {
            return refuse(req, error, reason, closeConnection: close, log: &log, startNs: startNs)
        }
        guard let target = PathNormalizer.normalize(target: log.rawTarget, policy: snapshot.config.server.pathPolicy) else {
            log.path = AccessLogRecord.receivedPath(log.rawTarget)  // what was tried (SPEC §3.2)
            return refuse(req, .badRequest, .pathRejected, log: &log, startNs: startNs)
        }
        log.path = target.path
        if handleSessionEndpoint(req, path: target.path, log: &log, startNs: startNs) { return }
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let facts = requestFacts(req, target: target, headers: headers, snapshot: snapshot)
        let auth = AuthContext(verifier: snapshot.verifier, cache: tokenCache, now: Clock.wallMs() / 1000,
                               mayWaitForKeys: true, refreshableIssuers: snapshot.refreshableIssuers)
        let plan = Decide.plan(facts, config: snapshot.config, auth: auth)
        carryOut(plan, req: req, own: snapshot, facts: facts, log: log, startNs: startNs, connection: conn)
    }

    /// Step 1 of SPEC §3: the limits and framing rules, as (error, reason, close the connection).
    /// `bodyLength` is the body read, or the length a head declares (before the body is read).
    func precheck(_ req: Request, rawTarget: String, bodyLength: Int, snapshot: Snapshot) -> (GatewayError, Reason, Bool)? {
        if req.pointee.headers_size > snapshot.config.server.maxHeaderBytes { return (.headersTooLarge, .headersTooLarge, false) }
        if bodyLength > snapshot.config.server.maxBodyBytes { return (.payloadTooLarge, .payloadTooLarge, false) }
        if RequestHead.problem(HeaderList(evhttp_request_get_input_headers(req)), httpMinor: Int32(req.pointee.minor),
                               absoluteForm: !rawTarget.hasPrefix("/")) != nil {
            return (.badRequest, .malformedRequest, true)
        }
        return nil
    }

    /// The facts `Decide.plan` needs, from a parsed head.
    func requestFacts(_ req: Request, target: NormalizedTarget, headers: HeaderList, snapshot: Snapshot) -> RequestFacts {
        let host = target.authority ?? headers["Host"]
        let method = Worker.methodName(evhttp_request_get_command(req))
        // The preflight's headers only on OPTIONS (SPEC §6): every other request skips the scans.
        let preflight = method == "OPTIONS"
        var facts = RequestFacts(method: method, target: target, host: host, authorization: headers["Authorization"],
                                 accept: headers["Accept"], origin: headers["Origin"],
                                 accessControlRequestMethod: preflight ? headers["Access-Control-Request-Method"] : nil,
                                 accessControlRequestHeaders: preflight ? headers.joined("access-control-request-headers") : nil)
        if let sessions = snapshot.config.sessions, let cookieHeader = headers.joined("cookie", separator: "; ") {
            facts.sessionCookie = sessions.cookie.value(inCookieHeader: cookieHeader)
            facts.secFetchSite = headers["Sec-Fetch-Site"]
        }
        return facts
    }

    /// Does what the plan says: refuse, redirect, answer a preflight, wait for the session store
    /// or for keys, or forward — all under `own`, the snapshot the request started with, never
    /// the loop's current one: this also runs after a wait (``PendingRequest``). The request's
    /// parts come one by one, as the hot path has them (no copy into a `PendingRequest` unless
    /// the request is about to wait).
    func carryOut(_ plan: Plan, req: Request, own: Snapshot, facts: RequestFacts, log: consuming AccessLogRecord,
                  startNs: UInt64, connection: ClientConnection) {
        var log = log
        let origin = facts.origin
        switch plan {
        case let .refuse(error, reason, route, status, tried, subject):
            refusePlanned(req, error, reason, route: route, status: status, tried: tried, subject: subject, origin: origin,
                          snapshot: own, log: &log, startNs: startNs)
        case let .redirect(route, location, tried, _):
            log.route = route.name
            log.upstream = route.upstream
            log.auth = tried
            let cors = own.config.corsPolicy(for: route)?.responseHeaders(origin: origin) ?? []
            redirect(req, to: location, cors: cors, log: &log, startNs: startNs)
        case let .preflight(route, corsHeaders):
            log.route = route.name
            log.upstream = route.upstream
            guard let corsHeaders else {
                return refuse(req, .corsRejected, .corsRejected, log: &log, startNs: startNs)
            }
            answerPreflight(req, headers: corsHeaders, log: &log, startNs: startNs)
        case let .needsSession(wait):
            log.route = wait.route.name
            log.upstream = wait.route.upstream
            log.auth = .session
            continueWithSession(PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                               connection: connection), wait: wait)
        case let .needsKeys(route, issuer):
            log.route = route.name
            log.upstream = route.upstream
            log.auth = .jwt
            waitForKeys(PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                       connection: connection), issuer: issuer)
        case let .forward(route, identity):
            let cors = own.config.corsPolicy(for: route).map { $0.responseHeaders(origin: origin) }
            guard let upstream = own.config.upstreams[route.upstream] else {
                return refuse(req, .badGateway, .upstreamError, cors: cors ?? [], log: &log, startNs: startNs)
            }
            log.route = route.name
            log.upstream = upstream.name
            log.auth = identity?.method ?? .none
            log.subject = identity?.subject
            let exchange = ProxyExchange(worker: self, request: req, snapshot: own, route: route, upstream: upstream,
                                         target: facts.target, host: facts.host, identity: identity, cors: cors,
                                         log: log, startNs: startNs, connection: connection)
            exchange.start()
        }
    }

    /// ``carryOut(_:req:own:facts:log:startNs:connection:)`` for a request that waited.
    func carryOut(_ plan: Plan, _ pending: PendingRequest) {
        carryOut(plan, req: pending.req, own: pending.snapshot, facts: pending.facts, log: pending.log,
                 startNs: pending.startNs, connection: pending.connection)
    }

    /// A refusal planned by `Decide`: the route's CORS policy (else the global one) and the log's
    /// route, auth and subject.
    func refusePlanned(_ req: Request, _ error: GatewayError, _ reason: Reason, route: Route?, status: Int, tried: AuthMethod,
                       subject: String?, origin: String?, snapshot: Snapshot, closeConnection: Bool = false,
                       log: inout AccessLogRecord, startNs: UInt64) {
        log.route = route?.name
        log.upstream = route?.upstream
        log.auth = tried
        log.subject = subject
        let cors = route.map { snapshot.config.corsPolicy(for: $0) } ?? snapshot.config.cors
        refuse(req, error, reason, status: status, bearerPresented: tried == .jwt, closeConnection: closeConnection,
               cors: cors?.responseHeaders(origin: origin) ?? [], log: &log, startNs: startNs)
    }

    /// 204 with the preflight's CORS headers (SPEC §6); never forwarded.
    func answerPreflight(_ req: Request, headers: [(String, String)], log: inout AccessLogRecord, startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        for (name, value) in headers { out.add(name, value) }
        out.set("X-Request-Id", log.requestID)
        log.status = 204
        log.decision = .preflight
        evhttp_send_reply(req, 204, "No Content", nil)
        finishLog(&log, startNs: startNs)
    }

    /// 302 to the login page for a browser without valid credentials (SPEC §3.1).
    private func redirect(_ req: Request, to location: String, cors: [(String, String)], log: inout AccessLogRecord, startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Location", location)
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        out.set("Content-Length", "0")
        for (name, value) in cors { out.add(name, value) }
        log.status = 302
        log.decision = .deny
        log.reason = .loginRedirect
        evhttp_send_reply(req, 302, "Found", nil)
        finishLog(&log, startNs: startNs)
    }

    /// Fills the facts of the request line and the client into the log record.
    private func describe(_ req: Request, into log: inout AccessLogRecord, trustedProxies: [CIDR]) {
        log.startMs = Clock.wallMs()
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        if let incoming = headers["X-Request-Id"], RequestID.isAcceptable(incoming) {
            log.requestID = incoming
        } else {
            log.requestID = ids.next()
        }
        log.client = peerAddress(of: req)
        if !trustedProxies.isEmpty {
            log.client = ForwardedFor.clientAddress(peer: log.client, incoming: headers.joined("x-forwarded-for"),
                                                    trusted: trustedProxies)
        }
        log.method = Worker.methodName(evhttp_request_get_command(req))
        if let uri = evhttp_request_get_uri(req) { log.setRawTarget(uri) }
        switch (req.pointee.major, req.pointee.minor) {
        case (1, 1): log.httpVersion = "HTTP/1.1"
        case (1, 0): log.httpVersion = "HTTP/1.0"
        default: log.httpVersion = "HTTP/\(req.pointee.major).\(req.pointee.minor)"
        }
        log.userAgent = headers["User-Agent"]
        log.referer = headers["Referer"]
    }

    func peerAddress(of req: Request) -> String {
        guard let evcon = evhttp_request_get_connection(req) else { return "" }
        if let conn = connections[evcon] { return conn.peer }
        var address: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(evcon, &address, &port)
        return address.map { String(cString: $0) } ?? ""
    }

    static func methodName(_ cmd: evhttp_cmd_type) -> String { methodToken(cmd).description }

    /// The method's name as on the wire (`UNKNOWN` for what evhttp could not parse).
    static func methodToken(_ cmd: evhttp_cmd_type) -> StaticString {
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
                bearerPresented: Bool = false, closeConnection: Bool = false, cors: [(String, String)]? = nil,
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
        // Refusals before a route is known use the global CORS policy (SPEC §6); a rejected
        // preflight carries none.
        let corsHeaders = cors ?? (error == .corsRejected ? [] :
            snapshot.config.cors?.responseHeaders(origin: HeaderList(evhttp_request_get_input_headers(req))["Origin"]) ?? [])
        for (name, value) in corsHeaders { out.add(name, value) }
        let body = error.body(status: status, requestID: log.requestID)
        let buffer = evbuffer_new()!
        var bytes = body
        bytes.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        log.status = status
        log.bytesSent = body.utf8.count
        switch error {
        case .badRequest, .payloadTooLarge, .headersTooLarge, .badGateway, .serviceUnavailable, .gatewayTimeout:
            log.decision = .error
        default:
            log.decision = .deny
        }
        log.reason = reason
        evhttp_send_reply(req, Int32(status), Worker.reasonPhrase(status), buffer)
        evbuffer_free(buffer)
        finishLog(&log, startNs: startNs)
    }

    /// Writes the access-log line and counts the request.
    func finishLog(_ log: inout AccessLogRecord, startNs: UInt64) {
        log.durationMs = Double(Clock.monotonicNs() - startNs) / 1_000_000
        switch snapshot.config.accessLog.format {
        case .json:
            let second = log.startMs / 1000
            if second != logSecond {
                logSecond = second
                let full = Clock.rfc3339(ms: second * 1000) // ...T15:44:55.000Z
                logPrefix = Array(full.utf8.dropLast(4))    // ...T15:44:55.
            }
            logScratch.removeAll(keepingCapacity: true)
            log.appendJSON(timestampPrefix: logPrefix, millis: Int(log.startMs % 1000), to: &logScratch)
            shared.log.append(bytes: logScratch)
        case .combined:
            shared.log.append(log.combined(clfTimestamp: Clock.clf(ms: log.startMs)))
        }
        shared.metrics.record(worker: index, log)
    }

    /// Answers a request that evhttp refused by itself (see CEvhttpHook): oversize head -> 431,
    /// oversize body -> 413, anything else -> 400. The connection is closed afterwards, as
    /// evhttp would, since its framing can no longer be trusted.
    func handleEvhttpError(_ req: Request, code: Int) {
        if let evcon = evhttp_request_get_connection(req), let conn = connections[evcon] {
            disarmHeaderTimer(conn)
            conn.earlyRefusal = nil  // evhttp refused the request itself; its answer is this one
        }
        // SPEC §3.2: HTTP/1.1 (or 1.0 to a 1.0 client) even when the request line could not be
        // parsed — evhttp would write the version it did not read (`HTTP/0.0`).
        if !(req.pointee.major == 1 && (req.pointee.minor == 0 || req.pointee.minor == 1)) {
            req.pointee.major = 1
            req.pointee.minor = 1
        }
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
