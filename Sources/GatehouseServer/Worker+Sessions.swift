import CLibevent
import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseSessions
import GatehouseDecision

/// A request pointer carried across threads: only ever touched on its worker's loop.
struct LoopBound<T>: @unchecked Sendable {
    let value: T
}

/// Session cookies on a worker's loop (SPEC §5.3, §7.2): the login, keepalive and logout
/// endpoints, and the store lookup that authenticates a cookie. Store calls and password checks
/// never block the loop; their completions come back to it.
extension Worker {
    /// The store this loop talks to: the process-wide memory store, or this loop's own Redis
    /// connection (made on first use, remade when the settings change).
    func sessionStore(_ runtime: SessionRuntime) -> SessionStore {
        if let memory = runtime.memoryStore { return memory }
        if case let .redis(host, port, db, password) = runtime.settings.store {
            if let existing = redisStore, redisSetting == runtime.settings.store, redisIdle == runtime.settings.idleTimeout {
                return existing
            }
            let store = RedisSessionStore(base: base, host: snapshot.redisAddress ?? host, port: port, db: db, password: password,
                                          idleTimeout: runtime.settings.idleTimeout)
            let worker = index
            store.log = { Gateway.say("sessions (worker \(worker)): redis \($0)") }
            redisStore = store
            redisSetting = runtime.settings.store
            redisIdle = runtime.settings.idleTimeout
            return store
        }
        fatalError("unreachable: a session store is memory or redis")
    }

    /// Step 4 of SPEC §3: carries out the plan at one of the gateway's own endpoints
    /// (``Decide/sessionEndpoint(_:config:)``), under `own`, the request's snapshot.
    func carryOut(_ plan: EndpointPlan, req: Request, own: Snapshot, facts: RequestFacts, log: AccessLogRecord,
                  startNs: UInt64) {
        var log = log
        log.route = nil
        guard let runtime = own.sessions else {
            // The config has sessions but the runtime is not there yet: nothing can be answered.
            return refuse(req, Refusal(.serviceUnavailable, .sessionStoreDown), log: &log, startNs: startNs)
        }
        switch plan {
        case .preflight(let answer):
            answerPreflight(req, headers: answer.headers, log: &log, startNs: startNs)
        case .refuse(let refusal):
            refusePlanned(req, refusal, log: &log, startNs: startNs)
        case let .login(login, cors):
            log.auth = .session
            startLogin(req, runtime: runtime, login: login, cors: cors, log: log, startNs: startNs)
        case let .keepalive(idHash, cors):
            log.auth = .session
            keepalive(req, idHash: idHash, runtime: runtime, cors: cors, log: log, startNs: startNs)
        case let .logout(idHash, cors):
            log.auth = .session
            guard let idHash else {
                let headers = Decide.logoutHeaders(cors: cors, settings: runtime.settings)
                return replyEmpty(req, status: 204, headers: headers, log: &log, startNs: startNs)
            }
            logout(req, idHash: idHash, runtime: runtime, cors: cors, log: log, startNs: startNs)
        case let .oidcLogin(oidc, returnTo):
            log.auth = .session
            startOIDCLogin(req, oidc: oidc, returnTo: returnTo, own: own, log: log, startNs: startNs)
        case let .oidcCallback(oidc, query):
            log.auth = .session
            finishOIDCLogin(req, oidc: oidc, query: query, own: own, runtime: runtime, log: log, startNs: startNs)
        }
    }

    /// `POST keepalive_path` with a session cookie: look up, then touch (SPEC §5.3).
    private func keepalive(_ req: Request, idHash: String, runtime: SessionRuntime, cors: [(String, String)],
                           log: AccessLogRecord, startNs: UInt64) {
        var log = log
        let store = sessionStore(runtime)
        let bound = LoopBound(value: req)
        inFlight += 1
        store.lookup(idHash: idHash) { [self] found in
            switch Decide.keepalive(after: found, settings: runtime.settings, now: Clock.wallMs() / 1000, cors: cors) {
            case .refuse(let refusal):
                inFlight -= 1
                refusePlanned(bound.value, refusal, log: &log, startNs: startNs)
                exitIfDrained()
            case .touch(let subject):
                log.subject = subject
                store.touch(idHash: idHash, lastSeen: Clock.sessionWriteSeconds()) { [self] result in
                    inFlight -= 1
                    answerStoreWrite(bound.value, result, cors: cors, headers: cors, log: &log, startNs: startNs)
                }
            }
        }
    }

    /// `POST logout_path` with a session cookie: look up (for the log's subject and how long
    /// to keep the revocation), revoke, clear the cookie (SPEC §5.3).
    private func logout(_ req: Request, idHash: String, runtime: SessionRuntime, cors: [(String, String)],
                        log: AccessLogRecord, startNs: UInt64) {
        var log = log
        let store = sessionStore(runtime)
        let bound = LoopBound(value: req)
        let settings = runtime.settings
        inFlight += 1
        store.lookup(idHash: idHash) { [self] found in
            log.subject = (try? found.get())??.subject
            let until = Decide.revokedUntil(found, settings: settings, now: Clock.wallMs() / 1000)
            store.revoke(idHash: idHash, until: until) { [self] result in
                inFlight -= 1
                // Its tunnels end now, on every loop (SPEC §12).
                if case .success = result { shared.tunnelHub.sessionEnded(idHash) }
                answerStoreWrite(bound.value, result, cors: cors, headers: Decide.logoutHeaders(cors: cors, settings: settings),
                                 log: &log, startNs: startNs)
            }
        }
    }

    /// 204 with `headers` once the store wrote, or the 503 (with `cors`) when it could not.
    private func answerStoreWrite(_ req: Request, _ result: Result<Void, SessionStoreError>, cors: [(String, String)],
                                  headers: [(String, String)], log: inout AccessLogRecord, startNs: UInt64) {
        if let refusal = Decide.afterStoreWrite(result, subject: log.subject, cors: cors) {
            refusePlanned(req, refusal, log: &log, startNs: startNs)
        } else {
            replyEmpty(req, status: 204, headers: headers, log: &log, startNs: startNs)
        }
        exitIfDrained()
    }

    /// An answer without a body (204), with the request id and `Cache-Control: no-store`.
    func replyEmpty(_ req: Request, status: Int, headers: [(String, String)], log: inout AccessLogRecord, startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        for (name, value) in headers { out.add(name, value) }
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        if draining { out.set("Connection", "close") }
        log.status = status
        log.decision = .allow
        evhttp_send_reply(req, Int32(status), Worker.reasonPhrase(status), nil)
        finishLog(&log, startNs: startNs)
    }

    // MARK: cookie-authenticated requests

    /// Looks the session up, then decides and forwards or refuses (SPEC §5.3) — under the
    /// request's own snapshot: the store, the session settings, the users file and the roles
    /// all come from `pending.snapshot`, the route and its requirement from `wait` (taken from
    /// that same snapshot). Nothing here reads the loop's current snapshot, which a reload may
    /// have replaced while the store was asked (SPEC §3).
    func continueWithSession(_ pending: PendingRequest, wait: SessionWait) {
        guard let runtime = pending.snapshot.sessions else {
            let plan = Decide.plan(afterSession: .success(nil), wait: wait, facts: pending.facts,
                                   under: pending.snapshot.decision, now: 0)
            return carryOut(plan, pending)
        }
        let store = sessionStore(runtime)
        let idleTimeout = runtime.settings.idleTimeout
        inFlight += 1
        store.lookup(idHash: wait.idHash) { [self] result in
            inFlight -= 1
            let now = Clock.wallMs() / 1000
            // The idle timer: written at most every few seconds per session, not on every request.
            if case .success(let record?) = result, record.state(now: now, idleTimeout: idleTimeout) == .active,
               now - record.lastSeen >= min(5, max(1, idleTimeout / 4)) {
                store.touch(idHash: wait.idHash, lastSeen: Clock.sessionWriteSeconds()) { _ in }
            }
            let plan = Decide.plan(afterSession: result, wait: wait, facts: pending.facts,
                                   under: pending.snapshot.decision, now: now)
            carryOut(plan, pending)
            flushClient(pending.connection)
            exitIfDrained()
        }
    }
}

extension Clock {
    /// Session times are whole seconds: they are written rounded up and checked against the
    /// current second rounded down, so a session never ends early (at most one second late).
    static func sessionWriteSeconds() -> Int64 { (wallMs() + 999) / 1000 }

    /// RFC 3339 UTC with whole seconds, for `expires_at`.
    static func rfc3339Seconds(_ seconds: Int64) -> String {
        let withMs = rfc3339(ms: seconds * 1000)
        return String(withMs.prefix(19)) + "Z"
    }
}
