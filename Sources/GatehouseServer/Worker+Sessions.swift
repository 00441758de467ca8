import CLibevent
import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseSessions

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

    /// Step 4 of SPEC §3: answers the gateway's own endpoints. False when `path` is not one.
    func handleSessionEndpoint(_ req: Request, path: String, log: inout AccessLogRecord, startNs: UInt64) -> Bool {
        guard let runtime = snapshot.sessions else { return false }
        let settings = runtime.settings
        let isLogin = settings.login.map { $0.path == path } ?? false
        let isKeepalive = settings.keepalivePath == path
        let isLogout = settings.logoutPath == path
        guard isLogin || isKeepalive || isLogout else { return false }
        let config = snapshot.config
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let origin = headers["Origin"]
        let cors = config.cors?.responseHeaders(origin: origin) ?? []
        log.route = nil

        // Their preflights are answered by the global CORS policy.
        if log.method == "OPTIONS", let origin, let requested = headers["Access-Control-Request-Method"] {
            if let policy = config.cors,
               case .allow(let allowed) = policy.preflight(origin: origin, method: requested,
                                                           requestHeaders: headers.joined("access-control-request-headers")) {
                answerPreflight(req, headers: allowed, log: &log, startNs: startNs)
            } else {
                refuse(req, .corsRejected, .corsRejected, log: &log, startNs: startNs)
            }
            return true
        }
        guard log.method == "POST" else {
            refuse(req, .notFound, .noRoute, cors: cors, log: &log, startNs: startNs)
            return true
        }
        log.auth = .session
        let host = headers["Host"]
        guard CSRFCheck.allowsUnsafe(secFetchSite: headers["Sec-Fetch-Site"], origin: origin, host: host,
                                     publicOrigin: config.server.publicOrigin,
                                     corsAllows: { config.cors?.allows(origin: $0) ?? false }) else {
            log.auth = .none   // refused before authentication (SPEC §9)
            refuse(req, .csrfRejected, .csrfRejected, cors: cors, log: &log, startNs: startNs)
            return true
        }
        if isLogin, let login = settings.login {
            startLogin(req, runtime: runtime, login: login, cors: cors, log: log, startNs: startNs)
            return true
        }
        // keepalive and logout act on the caller's session.
        let cookie = headers.joined("cookie", separator: "; ").flatMap { settings.cookie.value(inCookieHeader: $0) }
        guard let cookie, SessionID.isWellFormed(cookie) else {
            if isLogout { finishLogout(req, runtime: runtime, cors: cors, log: &log, startNs: startNs) } else {
                refuse(req, .unauthorized, cookie == nil ? .missingCredentials : .sessionUnknown, cors: cors, log: &log, startNs: startNs)
            }
            return true
        }
        let idHash = SessionID.hash(cookie)
        let store = sessionStore(runtime)
        let bound = LoopBound(value: req)
        inFlight += 1
        if isLogout {
            let now = Clock.wallMs() / 1000
            var log = log
            store.lookup(idHash: idHash) { [self] found in
                let until = (try? found.get())??.absoluteExpiry ?? now + settings.absoluteTimeout
                log.subject = (try? found.get())??.subject
                store.revoke(idHash: idHash, until: max(until, now + 1)) { [self] result in
                    inFlight -= 1
                    if case .failure = result {
                        refuse(bound.value, .serviceUnavailable, .sessionStoreDown, cors: cors, log: &log, startNs: startNs)
                    } else {
                        finishLogout(bound.value, runtime: runtime, cors: cors, log: &log, startNs: startNs)
                    }
                    exitIfDrained()
                }
            }
            return true
        }
        var log = log
        store.lookup(idHash: idHash) { [self] found in
            let now = Clock.wallMs() / 1000
            switch found {
            case .failure:
                inFlight -= 1
                refuse(bound.value, .serviceUnavailable, .sessionStoreDown, cors: cors, log: &log, startNs: startNs)
            case .success(nil):
                inFlight -= 1
                refuse(bound.value, .unauthorized, .sessionUnknown, cors: cors, log: &log, startNs: startNs)
            case .success(let record?):
                switch record.state(now: now, idleTimeout: settings.idleTimeout) {
                case .expired:
                    inFlight -= 1
                    refuse(bound.value, .unauthorized, .sessionExpired, cors: cors, log: &log, startNs: startNs)
                case .revoked:
                    inFlight -= 1
                    refuse(bound.value, .unauthorized, .sessionRevoked, cors: cors, log: &log, startNs: startNs)
                case .active:
                    log.subject = record.subject
                    // A user no longer in the users file keeps no session (SPEC §3.2).
                    guard Decide.sessionRoles(of: record.subject, login: settings.login) != nil else {
                        inFlight -= 1
                        refuse(bound.value, .unauthorized, .sessionRevoked, cors: cors, log: &log, startNs: startNs)
                        break
                    }
                    store.touch(idHash: idHash, lastSeen: Clock.sessionWriteSeconds()) { [self] result in
                        inFlight -= 1
                        if case .failure = result {
                            refuse(bound.value, .serviceUnavailable, .sessionStoreDown, cors: cors, log: &log, startNs: startNs)
                        } else {
                            replyEmpty(bound.value, status: 204, headers: cors, log: &log, startNs: startNs)
                        }
                        exitIfDrained()
                    }
                    return
                }
            }
            exitIfDrained()
        }
        return true
    }

    private func finishLogout(_ req: Request, runtime: SessionRuntime, cors: [(String, String)], log: inout AccessLogRecord, startNs: UInt64) {
        replyEmpty(req, status: 204, headers: cors + [("Set-Cookie", runtime.settings.cookie.clearingSetCookie())], log: &log, startNs: startNs)
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
            let plan = Decide.plan(afterSession: .success(nil), wait: wait, facts: pending.facts, sessions: nil, now: 0)
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
                                   sessions: pending.snapshot.config.sessions, now: now)
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
