import CLibevent
import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseSessions
import GatehouseDecision

/// One password login on its way through admission, failure counting and the check (SPEC §5.3,
/// §3.2 Login admission). Lives on one worker's loop.
final class LoginAttempt {
    let username: String
    /// ``ClientKey`` of the client: IPv4 address or IPv6 /64.
    let client: String
    let ticket: LoginAdmission.Ticket
    /// The Redis store that counts this attempt as pending; nil when the process's own
    /// ``LoginThrottle`` counts it (memory store, or Redis could not answer).
    var shared: RedisSessionStore?

    init(username: String, client: String, ticket: LoginAdmission.Ticket) {
        self.username = username
        self.client = client
        self.ticket = ticket
    }

    var sharedKey: String { LoginThrottle.sharedKey(username: username, client: client) }
}

/// `POST sessions.login.path` on a worker's loop: parse, admit the client (at most 2 checks at
/// once), reserve the attempt in the failure count (Redis when the store is Redis, else this
/// process's), check the password on a password thread, settle the count, create the session.
/// Nothing here blocks the loop; each asynchronous step comes back to it.
extension Worker {
    func startLogin(_ req: Request, runtime: SessionRuntime, login: LoginSettings, cors: [(String, String)],
                    log: AccessLogRecord, startNs: UInt64) {
        var log = log
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let input = evhttp_request_get_input_buffer(req)
        let length = evbuffer_get_length(input)
        guard length <= LoginRequest.maxBodyBytes else {
            return refuse(req, .payloadTooLarge, .payloadTooLarge, cors: cors, log: &log, startNs: startNs)
        }
        var body = [UInt8](repeating: 0, count: length)
        _ = body.withUnsafeMutableBytes { evbuffer_copyout(input, $0.baseAddress, length) }
        guard let credentials = LoginRequest.parse(contentType: headers["Content-Type"], body: body) else {
            return refuse(req, .invalidCredentials, .invalidCredentials, cors: cors, log: &log, startNs: startNs)
        }
        log.subject = credentials.username
        guard let ticket = runtime.admission.admit(client: ClientKey.of(log.client)) else {
            // Not an attempt: nothing is counted toward max_failures.
            return refuse(req, .tooManyRequests, .concurrentLogins, cors: cors, extraHeaders: [("Retry-After", "1")],
                          log: &log, startNs: startNs)
        }
        let attempt = LoginAttempt(username: credentials.username, client: ticket.client, ticket: ticket)
        let bound = LoopBound(value: req)
        inFlight += 1
        reserve(attempt, runtime: runtime, login: login) { [self] verdict in
            guard case .refused(let retryAfter) = verdict else {
                return check(attempt, password: credentials.password, req: bound.value, runtime: runtime, login: login,
                             cors: cors, log: log, startNs: startNs)
            }
            inFlight -= 1
            ticket.release()
            refuse(bound.value, .tooManyRequests, .throttled, cors: cors, extraHeaders: [("Retry-After", String(max(retryAfter, 1)))],
                   log: &log, startNs: startNs)
            exitIfDrained()
        }
    }

    /// Counts the attempt as pending where failures are counted: in Redis with a Redis store
    /// (shared by every instance), else — or when Redis cannot answer — in this process.
    private func reserve(_ attempt: LoginAttempt, runtime: SessionRuntime, login: LoginSettings,
                         then: @escaping (LoginThrottle.Verdict) -> Void) {
        guard runtime.memoryStore == nil, let store = sessionStore(runtime) as? RedisSessionStore else {
            return then(runtime.throttle.admit(username: attempt.username, client: attempt.client))
        }
        store.reserveLogin(key: attempt.sharedKey, maxFailures: login.maxFailures, window: login.failureWindow) { result in
            switch result {
            case .success(let verdict):
                if verdict == .allowed { attempt.shared = store }
                then(verdict)
            case .failure:
                // Fall back to this process's count (docs/security.md, password guessing).
                then(runtime.throttle.admit(username: attempt.username, client: attempt.client))
            }
        }
    }

    /// Gives the client's place back and settles the count where the attempt was reserved. A
    /// failure that Redis could not record is counted by this process instead.
    private func settle(_ attempt: LoginAttempt, _ outcome: LoginThrottle.Outcome, runtime: SessionRuntime,
                        login: LoginSettings) {
        attempt.ticket.release()
        guard let store = attempt.shared else {
            return runtime.throttle.finish(username: attempt.username, client: attempt.client, outcome: outcome)
        }
        store.settleLogin(key: attempt.sharedKey, outcome: outcome, maxFailures: login.maxFailures,
                          window: login.failureWindow) { result in
            if case .failure = result, outcome == .failed {
                runtime.throttle.finish(username: attempt.username, client: attempt.client, outcome: .failed)
            }
        }
    }

    /// Submits the password check; its result comes back to this loop.
    private func check(_ attempt: LoginAttempt, password: [UInt8], req: Request, runtime: SessionRuntime,
                       login: LoginSettings, cors: [(String, String)], log: AccessLogRecord, startNs: UInt64) {
        let bound = LoopBound(value: req)
        let boundAttempt = LoopBound(value: attempt)
        let admission = runtime.passwords.submit(user: attempt.username, password: password,
                                                 verifier: login.verifier) { [self] ok in
            // On a password thread: back to this loop.
            post { worker in
                worker.finishLogin(bound.value, ok: ok, attempt: boundAttempt.value, runtime: runtime, login: login,
                                   cors: cors, log: log, startNs: startNs)
            }
        }
        if admission == .busy {
            inFlight -= 1
            settle(attempt, .abandoned, runtime: runtime, login: login)
            var log = log
            refuse(req, .serviceUnavailable, .throttled, cors: cors, log: &log, startNs: startNs)
            exitIfDrained()
        }
    }

    private func finishLogin(_ req: Request, ok: Bool, attempt: LoginAttempt, runtime: SessionRuntime,
                             login: LoginSettings, cors: [(String, String)], log: AccessLogRecord, startNs: UInt64) {
        var log = log
        settle(attempt, ok ? .succeeded : .failed, runtime: runtime, login: login)
        guard ok else {
            inFlight -= 1
            log.subject = nil
            refuse(req, .invalidCredentials, .invalidCredentials, cors: cors, log: &log, startNs: startNs)
            return exitIfDrained()
        }
        let username = attempt.username
        let settings = runtime.settings
        let now = Clock.sessionWriteSeconds()
        let id = SessionID.generate()   // always fresh: a presented cookie is never adopted
        let roles = login.roles[username] ?? []
        let record = SessionRecord(idHash: id.idHash, subject: username, roles: roles, now: now,
                                   absoluteTimeout: settings.absoluteTimeout)
        let bound = LoopBound(value: req)
        sessionStore(runtime).create(record) { [self] result in
            inFlight -= 1
            defer { exitIfDrained() }
            if case .failure = result {
                return refuse(bound.value, .serviceUnavailable, .sessionStoreDown, cors: cors, log: &log, startNs: startNs)
            }
            replyLoggedIn(bound.value, record: record, id: id, roles: roles, settings: settings, cors: cors,
                          log: &log, startNs: startNs)
        }
    }

    /// 200 with `{"subject","roles","expires_at"}` and the session cookie (SPEC §5.3).
    private func replyLoggedIn(_ req: Request, record: SessionRecord, id: SessionID, roles: [String],
                               settings: SessionSettings, cors: [(String, String)], log: inout AccessLogRecord,
                               startNs: UInt64) {
        var body = "{\"subject\":"
        JSONText.appendString(record.subject, to: &body)
        body += ",\"roles\":["
        for (i, role) in roles.enumerated() {
            if i > 0 { body += "," }
            JSONText.appendString(role, to: &body)
        }
        body += "],\"expires_at\":\"\(Clock.rfc3339Seconds(record.absoluteExpiry))\"}"
        let out = HeaderList(evhttp_request_get_output_headers(req))
        for (name, value) in cors { out.add(name, value) }
        out.set("Content-Type", "application/json")
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        out.add("Set-Cookie", settings.cookie.setCookie(value: id.value, maxAge: settings.absoluteTimeout))
        log.status = 200
        log.decision = .allow
        log.bytesSent = body.utf8.count
        let buffer = evbuffer_new()!
        body.withUTF8 { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply(req, 200, "OK", buffer)
        evbuffer_free(buffer)
        finishLog(&log, startNs: startNs)
    }
}
