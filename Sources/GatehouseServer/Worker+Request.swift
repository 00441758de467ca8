import CLibevent
import CEvhttpHook
import GatehouseCore
import GatehouseConfig
import GatehouseSessions
import GatehousePolicy
import GatehouseDecision

typealias Request = UnsafeMutablePointer<evhttp_request>

/// The request path of SPEC §3 on a worker's loop: limits, request id, path policy, route,
/// decision — then forward or refuse.
extension Worker {
    func handle(_ req: Request) {
        let conn = connection(for: evhttp_request_get_connection(req))
        defer { flushClient(conn) }
        disarmHeaderTimer(conn)
        // A head decided before its body keeps the snapshot and the facts it was decided with.
        var head: DecidedHead? = nil
        if let decided = conn.decidedHead {  // a reference: the common nil costs one compare
            conn.decidedHead = nil
            if decided.req == req { head = decided }
        }
        let snapshot = head?.snapshot ?? self.snapshot  // a reference: not `let config = …`, whose copy retains each field
        var log = AccessLogRecord()
        let startNs = Clock.monotonicNs()
        describe(req, into: &log, trustedProxies: snapshot.config.server.trustedProxies, peer: conn.peer)
        if let early = conn.earlyRefusal {  // a reference, like `decidedHead`
            conn.earlyRefusal = nil
            return answerEarlyRefusal(early, req: req, log: &log, startNs: startNs, connection: conn)
        }
        let bodyLength = evbuffer_get_length(evhttp_request_get_input_buffer(req))
        if let refusal = precheck(req, rawTarget: log.rawTarget, bodyLength: bodyLength, snapshot: snapshot) {
            return refuse(req, refusal, log: &log, startNs: startNs)
        }
        if head == nil, let forwardAuth = snapshot.config.forwardAuth,
           ForwardAuthRequest.isEndpoint(log.rawTarget, settings: forwardAuth) {
            return handleForwardAuth(req, settings: forwardAuth, snapshot: snapshot, log: log, startNs: startNs,
                                     connection: conn)
        }
        let facts: RequestFacts
        if let head {
            facts = head.facts
        } else {
            guard let target = PathNormalizer.normalize(target: log.rawTarget, policy: snapshot.config.server.pathPolicy) else {
                log.path = AccessLogRecord.receivedPath(log.rawTarget)  // what was tried (SPEC §3.2)
                return refuse(req, pathRefusal(req, rawTarget: log.rawTarget, snapshot: snapshot), log: &log, startNs: startNs)
            }
            facts = requestFacts(req, target: target, snapshot: snapshot, connection: conn)
        }
        log.path = facts.target.path
        if let endpoint = Decide.sessionEndpoint(facts, under: snapshot.decision) {
            return carryOut(endpoint, req: req, own: snapshot, facts: facts, log: log, startNs: startNs)
        }
        let auth = AuthContext(verifier: snapshot.verifier, cache: tokenCache, now: Clock.wallMs() / 1000,
                               mayWaitForKeys: true, refreshableIssuers: snapshot.refreshableIssuers,
                               introspectionCache: introspectionCache)
        let plan = Decide.plan(facts, under: snapshot.decision, auth: auth)
        carryOut(plan, req: req, own: snapshot, facts: facts, log: log, startNs: startNs, connection: conn)
    }

    /// Step 1 of SPEC §3: the limits and framing rules, as a refusal under `snapshot` (the
    /// global CORS policy's headers). `bodyLength` is the body read, or the length a head
    /// declares (before the body is read).
    func precheck(_ req: Request, rawTarget: String, bodyLength: Int, snapshot: Snapshot) -> Refusal? {
        // `snapshot.config` each time, not `let config = …`: a copy of the config retains each field.
        func refusal(_ error: GatewayError, _ reason: Reason, close: Bool = false) -> Refusal {
            Decide.refusalBeforeRoute(error, reason, origin: HeaderList(evhttp_request_get_input_headers(req)).first("Origin"),
                                      config: snapshot.config, closeConnection: close)
        }
        if req.pointee.headers_size > snapshot.config.server.maxHeaderBytes { return refusal(.headersTooLarge, .headersTooLarge) }
        if bodyLength > snapshot.config.server.maxBodyBytes { return refusal(.payloadTooLarge, .payloadTooLarge) }
        if RequestHead.problem(HeaderList(evhttp_request_get_input_headers(req)), httpMinor: Int32(req.pointee.minor),
                               absoluteForm: rawTarget.utf8.first != UInt8(ascii: "/")) != nil {  // not `hasPrefix`: ~220 instructions
            return refusal(.badRequest, .malformedRequest, close: true)
        }
        return nil
    }

    /// The 400 of a path the path policy refuses (SPEC §4.1), under `snapshot` (the global
    /// CORS policy's headers). The edge normalizes with `PathNormalizer` itself, so that the hot
    /// path carries no refusal around.
    func pathRefusal(_ req: Request, rawTarget: String, snapshot: Snapshot) -> Refusal {
        let origin = HeaderList(evhttp_request_get_input_headers(req)).first("Origin")
        guard case .failure(let refusal) = Decide.normalize(rawTarget, origin: origin, config: snapshot.config) else {
            return Decide.refusalBeforeRoute(.badRequest, .pathRejected, origin: origin, config: snapshot.config)
        }
        return refusal
    }

    /// The request's facts, built once at this edge (``RequestFacts/init(method:target:host:headers:config:)``)
    /// under the request's own snapshot.
    func requestFacts(_ req: Request, target: NormalizedTarget, snapshot: Snapshot, connection: ClientConnection) -> RequestFacts {
        let headers = ConnectionHeaders(list: HeaderList(evhttp_request_get_input_headers(req)), connection: connection)
        var facts = RequestFacts(method: Worker.methodName(evhttp_request_get_command(req)), target: target,
                                 host: RequestFacts.host(of: target, headers: headers.list), headers: headers,
                                 under: snapshot.decision)
        identifyClient(&facts, req: req, snapshot: snapshot)
        return facts
    }

    /// Does what the plan says: refuse, redirect, answer a preflight, wait for the session store
    /// or for keys, or forward — all under `own`, the snapshot the request started with, never
    /// the loop's current one: this also runs after a wait (``PendingRequest``). The request's
    /// parts come one by one, as the hot path has them (no copy into a `PendingRequest` unless
    /// the request is about to wait).
    func carryOut(_ plan: Plan, req: Request, own: Snapshot, facts: RequestFacts, log: consuming AccessLogRecord,
                  startNs: UInt64, connection: ClientConnection) {
        // `log` is changed in place and handed on with `consume`: a `var log = log` copy here
        // and in `startForward` cost two copies of the record per request.
        switch plan {
        case .refuse(let refusal):
            refusePlanned(req, refusal, log: &log, startNs: startNs)
        case .redirect(let redirect):
            log.note(route: redirect.route, auth: redirect.tried)
            self.redirect(req, redirect, log: &log, startNs: startNs)
        case .preflight(let answer):
            log.route = answer.route?.name
            log.upstream = answer.route?.upstream
            answerPreflight(req, headers: answer.headers, log: &log, startNs: startNs)
        case let .needsSession(wait):
            log.note(route: wait.route, auth: .session)
            continueWithSession(PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                               connection: connection), wait: wait)
        case let .needsIntrospection(wait):
            log.note(route: wait.route, auth: .introspection)
            waitForIntrospection(PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                                connection: connection), wait: wait)
        case let .needsKeys(route, issuer):
            log.note(route: route, auth: .jwt)
            waitForKeys(PendingRequest(req: req, snapshot: own, facts: facts, log: log, startNs: startNs,
                                       connection: connection), issuer: issuer)
        case .needsRateLimit(let check):
            carryRateLimit(check, req: req, own: own, facts: facts, log: log, startNs: startNs, connection: connection)
        case .forward(let forward):
            startForward(forward, req: req, own: own, facts: facts, log: consume log, startNs: startNs, connection: connection)
        }
    }

    /// Forwards an allowed request to its route's upstream (SPEC §7), under `own`.
    func startForward(_ forward: Forward, req: Request, own: Snapshot, facts: RequestFacts, log: consuming AccessLogRecord,
                      startNs: UInt64, connection: ClientConnection) {
        guard let upstream = own.upstream(of: forward.route) else {
            return refuse(req, Refusal(.badGateway, .upstreamError, cors: forward.cors ?? []), log: &log, startNs: startNs)
        }
        log.note(route: forward.route, auth: forward.identity?.method ?? .none)
        log.subject = forward.identity?.subject
        if let shadow = forward.shadow { noteShadow(shadow, route: forward.route, identity: forward.identity, log: &log) }
        let exchange = ProxyExchange(worker: self, request: req, snapshot: own, forward: forward, upstream: upstream,
                                     target: facts.target, host: facts.host, log: consume log, startNs: startNs,
                                     connection: connection, tunnelFacts: forward.tunnel ? facts : nil)
        exchange.start()
    }

    /// A refusal a shadow route did not carry out (SPEC §15.2): logged as the decision it would
    /// have been, with `shadow: true`, and counted.
    func noteShadow(_ shadow: ShadowVerdict, route: Route, identity: Identity?, log: inout AccessLogRecord) {
        log.decision = shadow.decision
        log.reason = shadow.reason
        log.shadow = true
        if identity == nil { log.auth = shadow.tried }
        shared.metrics.shadowRefused(worker: index, route: route.name, reason: shadow.reason)
    }

    /// ``carryOut(_:req:own:facts:log:startNs:connection:)`` for a request that waited (or the
    /// carrier of the front-end that made it wait).
    func carryOut(_ plan: Plan, _ pending: PendingRequest) {
        if case .needsRateLimit(let check) = plan { return carryRateLimit(check, pending) }
        if let carrier = pending.carrier { return carrier(self, plan, pending) }
        carryOut(plan, req: pending.req, own: pending.snapshot, facts: pending.facts, log: pending.log,
                 startNs: pending.startNs, connection: pending.connection)
    }

    /// A refusal the pipeline planned: the log's route, auth and subject from it, then the answer.
    func refusePlanned(_ req: Request, _ refusal: Refusal, log: inout AccessLogRecord, startNs: UInt64) {
        log.route = refusal.route?.name
        log.upstream = refusal.route?.upstream
        log.auth = refusal.tried
        if let subject = refusal.subject { log.subject = subject }
        refuse(req, refusal, log: &log, startNs: startNs)
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
    private func redirect(_ req: Request, _ redirect: Redirect, log: inout AccessLogRecord, startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Location", redirect.location)
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        out.set("Content-Length", "0")
        for (name, value) in redirect.cors { out.add(name, value) }
        log.status = 302
        log.decision = .deny
        log.reason = .loginRedirect
        evhttp_send_reply(req, 302, "Found", nil)
        finishLog(&log, startNs: startNs)
    }

    /// Fills the facts of the request line and the client into the log record.
    /// `peer`: the client connection's address (formatted once per connection).
    private func describe(_ req: Request, into log: inout AccessLogRecord, trustedProxies: [CIDR], peer: String) {
        log.startMs = Clock.wallMs()
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        if let incoming = headers["X-Request-Id"], RequestID.isAcceptable(incoming) {
            log.requestID = incoming
        } else {
            log.requestID = ids.next()
        }
        log.trace = headers.raw("traceparent").flatMap(TraceContext.parse(cString:)) ?? ids.trace()
        log.client = peer
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

    /// Answers with the uniform error (SPEC §3.1) and writes the access-log line: exactly what
    /// `refusal` says (status, challenge, CORS and other headers, connection close).
    func refuse(_ req: Request, _ refusal: Refusal, log: inout AccessLogRecord, startNs: UInt64) {
        let status = refusal.status
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Content-Type", "application/json")
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        if let challenge = refusal.challenge { out.set("WWW-Authenticate", challenge) }
        if refusal.closeConnection || draining { out.set("Connection", "close") }
        for (name, value) in refusal.cors { out.add(name, value) }
        for (name, value) in refusal.extraHeaders { out.add(name, value) }
        let body = refusal.error.body(status: status, requestID: log.requestID)
        let buffer = evbuffer_new()!
        var bytes = body
        bytes.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        log.status = status
        log.bytesSent = body.utf8.count
        log.decision = refusal.decision
        log.reason = refusal.reason
        evhttp_send_reply(req, Int32(status), Worker.reasonPhrase(status), buffer)
        evbuffer_free(buffer)
        finishLog(&log, startNs: startNs)
    }

    /// A refusal the server makes itself (an upstream failure, a login step): `cors` as given,
    /// or — nil, before any route — the global policy's of the loop's current config.
    func refuse(_ req: Request, _ error: GatewayError, _ reason: Reason, closeConnection: Bool = false,
                cors: [(String, String)]? = nil, extraHeaders: [(String, String)] = [],
                log: inout AccessLogRecord, startNs: UInt64) {
        var refusal = Refusal(error, reason, cors: cors ?? [], extraHeaders: extraHeaders, closeConnection: closeConnection)
        if cors == nil {
            let origin = HeaderList(evhttp_request_get_input_headers(req)).first("Origin")
            refusal.cors = Decide.refusalBeforeRoute(error, reason, origin: origin, config: snapshot.config).cors
        }
        refuse(req, refusal, log: &log, startNs: startNs)
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
            conn.decidedHead = nil
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
        log.trace = ids.trace()  // the head was not parsed: its traceparent is not read
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

extension AccessLogRecord {
    /// The route, its upstream and the credential kind, as the access log names them.
    mutating func note(route: Route, auth: AuthMethod) {
        self.route = route.name
        upstream = route.upstream
        self.auth = auth
    }
}
