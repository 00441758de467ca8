import CLibevent
import GatehouseCore
import GatehouseConfig
import GatehousePolicy
import GatehouseDecision

/// Forward auth (SPEC §11): the decision endpoint for a front proxy, on the public listeners.
/// The described request goes through the same pipeline as a proxied one (path policy, route,
/// CORS, authentication, authorization, CSRF, the session and key waits) and nothing is
/// forwarded: the plan becomes a ``ForwardAuthAnswer`` (200, 401, 403, or 503/504).
///
/// Threading: all on this worker's loop, as `handle`.
extension Worker {
    /// A request for `forward_auth.path` (``ForwardAuthRequest/isEndpoint(_:settings:)``), past
    /// the limits of SPEC §3 step 1, under `snapshot`, the request's own.
    func handleForwardAuth(_ req: Request, settings: ForwardAuthSettings, snapshot: Snapshot,
                           log: consuming AccessLogRecord, startNs: UInt64, connection: ClientConnection) {
        var log = log
        guard settings.allows(peer: peerAddress(of: req)) else {
            log.path = AccessLogRecord.receivedPath(log.rawTarget)
            return refuse(req, Refusal(.notFound, .forwardAuthPeer), log: &log, startNs: startNs)
        }
        log.forwardAuth = true
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        let described: DescribedRequest
        switch ForwardAuthRequest.describe(method: log.method, rawTarget: log.rawTarget, headers: headers, settings: settings) {
        case .success(let found): described = found
        case .failure(let reason):
            log.path = AccessLogRecord.receivedPath(log.rawTarget)
            return refuse(req, ForwardAuthAnswer.refusal(reason), log: &log, startNs: startNs)
        }
        // The log line tells of the described request (the combined format's request line too).
        log.method = described.method
        log.rawTarget = described.target
        log.rawTargetBytes = nil
        var facts: RequestFacts
        switch ForwardAuthAnswer.facts(of: described, headers: headers, under: snapshot.decision) {
        case .success(let built): facts = built
        case .failure(let refusal):
            log.path = AccessLogRecord.receivedPath(described.target)  // what was tried (SPEC §3.2)
            return refuse(req, refusal, log: &log, startNs: startNs)
        }
        identifyClient(&facts, req: req, snapshot: snapshot)  // rate-limit keys (SPEC §13), as the proxy's

        log.path = facts.target.path
        let auth = AuthContext(verifier: snapshot.verifier, cache: tokenCache, now: Clock.wallMs() / 1000,
                               mayWaitForKeys: true, refreshableIssuers: snapshot.refreshableIssuers)
        let plan = Decide.plan(facts, under: snapshot.decision, auth: auth)
        switch plan {
        case .needsSession, .needsKeys, .needsIntrospection, .needsRateLimit:
            // Only a request that waits (or asks the rate-limit store) is copied into a
            // PendingRequest.
            carryOutForwardAuth(plan, PendingRequest(req: req, snapshot: snapshot, facts: facts, log: log, startNs: startNs,
                                                     connection: connection, carrier: { worker, plan, pending in
                                                         worker.carryOutForwardAuth(plan, pending)
                                                     }))
        default:
            answerForwardAuth(plan, req: req, own: snapshot, log: &log, startNs: startNs)
        }
    }

    /// Carries a forward-auth plan out after (or into) a wait: the waits are the proxy's (the
    /// session store, a key refresh; they come back here through ``PendingRequest/carrier``),
    /// the answer is forward auth's own. Everything under `pending.snapshot`.
    func carryOutForwardAuth(_ plan: Plan, _ pending: PendingRequest) {
        var pending = pending
        switch plan {
        case .needsSession(let wait):
            pending.log.note(route: wait.route, auth: .session)
            continueWithSession(pending, wait: wait)
        case .needsKeys(let route, let issuer):
            pending.log.note(route: route, auth: .jwt)
            waitForKeys(pending, issuer: issuer)
        case .needsIntrospection(let wait):
            pending.log.note(route: wait.route, auth: .introspection)
            waitForIntrospection(pending, wait: wait)
        case .needsRateLimit(let check):
            // The store's answer comes back through carryOut(_:_:) to the carrier: the allow, or
            // the 429 that forward auth answers as 403 with Retry-After.
            carryRateLimit(check, pending)
        default:
            answerForwardAuth(plan, req: pending.req, own: pending.snapshot, log: &pending.log, startNs: pending.startNs)
        }
    }

    /// Answers a plan that needs no (more) waiting, under `own`, the request's own snapshot
    /// (never the loop's current one: this also runs after a wait).
    private func answerForwardAuth(_ plan: Plan, req: Request, own: Snapshot, log: inout AccessLogRecord,
                                   startNs: UInt64) {
        log.upstream = nil  // nothing is forwarded
        guard let answer = ForwardAuthAnswer(plan, identityHeaders: own.config.identityHeaders) else {
            // A wait after a wait: the pipeline never plans one (a request waits at most once).
            return refuse(req, Refusal(.serviceUnavailable, .upstreamError), log: &log, startNs: startNs)
        }
        switch answer {
        case let .allow(route, identity, headers, shadow):
            log.route = route.name
            log.auth = identity?.method ?? .none
            log.subject = identity?.subject
            if let shadow { noteShadow(shadow, route: route, identity: identity, log: &log) }
            answerAllowed(req, headers: headers, decision: shadow?.decision ?? .allow, log: &log, startNs: startNs)
        case let .preflight(route, headers):
            log.route = route?.name
            answerAllowed(req, headers: headers, decision: .preflight, log: &log, startNs: startNs)
        case .refuse(let refusal):
            log.route = refusal.route?.name
            log.auth = refusal.tried
            if let subject = refusal.subject { log.subject = subject }
            refuse(req, refusal, log: &log, startNs: startNs)
        }
    }

    /// 200 with an empty body and `headers` (the identity headers, or a preflight's CORS headers).
    private func answerAllowed(_ req: Request, headers: [(String, String)], decision: Decision, log: inout AccessLogRecord,
                               startNs: UInt64) {
        let out = HeaderList(evhttp_request_get_output_headers(req))
        for (name, value) in headers { out.add(name, value) }
        // The answer's own headers: none of these names is among `headers` (identity headers
        // cannot be named so, CORS headers are not), so no search for an old value.
        out.add("Cache-Control", "no-store")
        out.add("X-Request-Id", log.requestID)
        if draining { out.set("Connection", "close") }
        log.status = 200
        log.decision = decision
        evhttp_send_reply(req, 200, "OK", nil)
        finishLog(&log, startNs: startNs)
    }
}
