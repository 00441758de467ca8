import CLibevent
import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehouseSessions
import GatehouseDecision

/// Browser login through an OpenID provider on a worker's loop (SPEC §14.2): the 302 to the
/// provider, then at the callback the code exchange (this loop's own ``HTTPFetcher``: never
/// blocking, TLS verified, 1 MiB / 10 s bounded), the ID token check and a session created in
/// the same store, with the same cookie and timeouts, as the password login's. Decisions are
/// ``Decide``'s (Decide+OIDC.swift), under the request's own snapshot; the keys are the ones
/// known now (keys are data, as after a key wait).
///
/// Threading: all on this worker's loop.
extension Worker {
    func startOIDCLogin(_ req: Request, oidc: OIDCLoginSettings, returnTo: String?, own: Snapshot, log: AccessLogRecord,
                        startNs: UInt64) {
        var log = log
        let endpoint = shared.providerMetadata.withLock { $0[oidc.issuerName]?.authorizationEndpoint }
        var random = SystemRandomNumberGenerator()
        switch Decide.oidcAuthorization(oidc, authorizationEndpoint: endpoint, returnTo: returnTo, config: own.config,
                                        now: Clock.wallMs() / 1000, using: &random) {
        case .failure(let refusal):
            refusePlanned(req, refusal, log: &log, startNs: startNs)
        case .success(let authorization):
            replyRedirect(req, to: authorization.location, cookies: [authorization.setCookie], decision: .allow, log: &log,
                          startNs: startNs)
        }
    }

    func finishOIDCLogin(_ req: Request, oidc: OIDCLoginSettings, query: String?, own: Snapshot, runtime: SessionRuntime,
                         log: AccessLogRecord, startNs: UInt64) {
        var log = log
        let cookieHeader = HeaderList(evhttp_request_get_input_headers(req)).joined("cookie", separator: "; ")
        let start: OIDCCallbackStart
        switch Decide.oidcCallback(oidc, query: query, cookieHeader: cookieHeader, now: Clock.wallMs() / 1000) {
        case .failure(let refusal): return refusePlanned(req, refusal, log: &log, startNs: startNs)
        case .success(let found): start = found
        }
        // The attempt is used up whatever happens next.
        let clear = Decide.attemptCookie(start.attempt.cookieName, value: "", maxAge: 0, oidc: oidc, config: own.config)
        guard let tokenEndpoint = shared.providerMetadata.withLock({ $0[oidc.issuerName]?.tokenEndpoint }) else {
            var refusal = Refusal(.serviceUnavailable, .oidcProviderUnavailable, tried: .session)
            refusal.extraHeaders = [("Set-Cookie", clear)]
            return refusePlanned(req, refusal, log: &log, startNs: startNs)
        }
        let fetcher = oidcFetcher ?? HTTPFetcher(base: base)
        oidcFetcher = fetcher
        let bound = LoopBound(value: req)
        inFlight += 1
        fetcher.postForm(tokenEndpoint, body: Decide.oidcTokenRequest(oidc, start: start, config: own.config),
                         headers: [("Authorization", IntrospectionSettings.basicAuthorization(clientID: oidc.clientID,
                                                                                                 secret: oidc.clientSecret)),
                                   ("Accept", "application/json")],
                         deadlineMs: HTTPFetcher.deadlineMs) { [self] result in
            exchanged(bound.value, result, start: start, oidc: oidc, own: own, runtime: runtime, clear: clear, log: log,
                      startNs: startNs)
        }
    }

    private func exchanged(_ req: Request, _ result: Result<FetchedDocument, FetchError>, start: OIDCCallbackStart,
                           oidc: OIDCLoginSettings, own: Snapshot, runtime: SessionRuntime, clear: String,
                           log: AccessLogRecord, startNs: UInt64) {
        var log = log
        func fail(_ refusal: Refusal) {
            inFlight -= 1
            var refusal = refusal
            refusal.extraHeaders.append(("Set-Cookie", clear))
            refusePlanned(req, refusal, log: &log, startNs: startNs)
            exitIfDrained()
        }
        guard case .success(let document) = result else {
            if case .failure(let error) = result { Gateway.say("oidc: token endpoint of issuer \(oidc.issuerName): \(error)") }
            return fail(Refusal(.serviceUnavailable, .oidcProviderUnavailable, tried: .session))
        }
        // The keys known now (a refresh may have brought the ID token's key since the request began).
        let verifier = KeyWait.verifier(parked: own, current: snapshot, issuer: oidc.issuerName)
        let identity: OIDCIdentity
        switch Decide.oidcIdentity(status: document.status, body: document.body, attempt: start.attempt, oidc: oidc,
                                   verifier: verifier, now: Clock.wallMs() / 1000) {
        case .failure(let refusal): return fail(refusal)
        case .success(let found): identity = found
        }
        log.subject = identity.subject
        let settings = runtime.settings
        let id = SessionID.generate()
        let record = SessionRecord(idHash: id.idHash, subject: identity.subject, roles: identity.roles,
                                   createdAt: Clock.sessionWriteSeconds(), lastSeen: Clock.sessionWriteSeconds(),
                                   absoluteExpiry: Clock.sessionWriteSeconds() + settings.absoluteTimeout, oidc: true)
        let bound = LoopBound(value: req)
        sessionStore(runtime).create(record) { [self] stored in
            inFlight -= 1
            defer { exitIfDrained() }
            if case .failure = stored {
                var log = log
                log.subject = identity.subject
                return refusePlanned(bound.value, Refusal(.serviceUnavailable, .sessionStoreDown, tried: .session,
                                                          extraHeaders: [("Set-Cookie", clear)]), log: &log, startNs: startNs)
            }
            var log = log
            log.subject = identity.subject
            let session = settings.cookie.setCookie(value: id.value, maxAge: settings.absoluteTimeout)
            replyRedirect(bound.value, to: start.attempt.returnTo, cookies: [clear, session], decision: .allow, log: &log,
                          startNs: startNs)
        }
    }

    /// 302 to `location` with `cookies`, `Cache-Control: no-store` and the request id.
    private func replyRedirect(_ req: Request, to location: String, cookies: [String], decision: Decision,
                               log: inout AccessLogRecord, startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        out.set("Location", location)
        out.set("Cache-Control", "no-store")
        out.set("X-Request-Id", log.requestID)
        out.set("Content-Length", "0")
        for cookie in cookies { out.add("Set-Cookie", cookie) }
        if draining { out.set("Connection", "close") }
        log.status = 302
        log.decision = decision
        evhttp_send_reply(req, 302, "Found", nil)
        finishLog(&log, startNs: startNs)
    }
}
