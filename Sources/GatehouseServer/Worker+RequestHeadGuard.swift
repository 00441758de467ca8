import CLibevent
import CEvhttpHook
import GatehouseCore
import GatehousePolicy
import GatehouseDecision

/// The client edge of SPEC §3.2, before evhttp hands a request over (see CEvhttpHook/hook.c
/// for how the hooks are reached on libevent 2.1):
///
/// - **Raw head bytes.** Every request line and field line is checked by ``RawHeadScanner``
///   before evhttp parses it: control bytes and obs-fold lines make evhttp refuse the head
///   (400, connection closed), so evhttp never merges a folded line into a value.
/// - **`server.header_timeout`.** The first read that leaves a head incomplete arms a timer;
///   the completed head disarms it. When it fires, the connection is closed without a
///   response and logged with status 408, reason `header_timeout`.
/// - **The decision before the body.** When a complete head announces a body, the request is
///   decided on its head (the same checks and `Decide.plan` as `handle`, under the same
///   snapshot, on facts built once: `handle` reuses them and that snapshot). A refusal is answered without reading the body: the body's framing headers are
///   taken out so that evhttp hands the request over at once (no body read, no `100 Continue`),
///   `handle` answers the refusal, and the connection is closed after a lingering read
///   (`lingerThenClose`). Anything else goes on as before and `handle` decides again, as the
///   authority; a plan that waits for a session lookup or a key refresh is not answered early.
///
/// Threading: everything here runs on the worker's loop, inside evhttp's read of the client.
extension Worker {
    /// The process-wide raw-byte check (installed once; any thread may parse a head).
    static let installRawHeadCheck: Void = {
        gh_install_head_check { input, requestLine in
            switch RawHeadCheck.verdict(input!, requestLine: requestLine != 0) {
            case .clean: 0
            case .unread: 1
            case .refused: -1
            }
        }
    }()

    /// Called by the hook on this worker's thread as evhttp reads a request head.
    func headEvent(_ req: Request, event: Int32) {
        guard let evcon = evhttp_request_get_connection(req) else { return }
        if event == Int32(GH_HEAD_PARTIAL) {
            armHeaderTimer(connection(for: evcon))
            return
        }
        if headTimersArmed > 0, let conn = connections[evcon] { disarmHeaderTimer(conn) }
        guard announcesBody(req) else { return }
        decideBeforeBody(req, evcon: evcon)
    }

    // MARK: server.header_timeout

    private func armHeaderTimer(_ conn: ClientConnection) {
        guard !conn.headTimerArmed else { return }
        if conn.headTimer == nil {
            conn.headTimer = gh_timer_new(base, 0, { _, _, arg in
                let conn = Unmanaged<ClientConnection>.fromOpaque(arg!).takeUnretainedValue()
                conn.worker.headerTimedOut(conn)
            }, Unmanaged.passUnretained(conn).toOpaque())
        }
        conn.headTimerArmed = true
        headTimersArmed += 1
        _ = gh_timer_add_ms(conn.headTimer, snapshot.config.server.headerTimeoutMs)
    }

    /// The head is complete (or evhttp refused it): no header timeout from here on.
    func disarmHeaderTimer(_ conn: ClientConnection) {
        guard conn.headTimerArmed else { return }
        conn.headTimerArmed = false
        headTimersArmed -= 1
        event_del(conn.headTimer)
    }

    /// SPEC §3.2: closed without a response; one log line with 408 `header_timeout`.
    private func headerTimedOut(_ conn: ClientConnection) {
        conn.headTimerArmed = false
        headTimersArmed -= 1
        guard !conn.closed else { return }
        var log = AccessLogRecord()
        log.startMs = Clock.wallMs()
        log.requestID = ids.next()
        log.trace = ids.trace()  // no head arrived: no traceparent to keep
        log.client = conn.peer
        log.method = "-"
        log.rawTarget = "-"
        log.status = 408
        log.decision = .error
        log.reason = .headerTimeout
        finishLog(&log, startNs: Clock.monotonicNs())
        evhttp_connection_free(conn.evcon)
    }

    // MARK: the decision before the body

    /// The head says a body follows: `Transfer-Encoding`, or a `Content-Length` other than 0,
    /// on a method whose body evhttp reads (not HEAD or TRACE).
    private func announcesBody(_ req: Request) -> Bool {
        let method = evhttp_request_get_command(req)
        guard method != EVHTTP_REQ_HEAD && method != EVHTTP_REQ_TRACE else { return false }
        var found = false
        HeaderList(evhttp_request_get_input_headers(req)).forEach { name, value in
            // Most names start with neither letter: one byte read, no comparison.
            let first = UInt8(bitPattern: name[0]) | 0x20
            guard !found, first == UInt8(ascii: "t") || first == UInt8(ascii: "c") else { return }
            if HeaderRules.nameEquals(name, constant: "transfer-encoding") {
                found = true
            } else if HeaderRules.nameEquals(name, constant: "content-length") {
                var i = 0
                while value[i] == 0x20 || value[i] == 0x09 || value[i] == 0x30 { i += 1 }
                found = value[i] != 0
            }
        }
        return found
    }

    private func decideBeforeBody(_ req: Request, evcon: OpaquePointer) {
        let snapshot = self.snapshot
        let conn = connection(for: evcon)
        guard let refusal = earlyRefusal(req, snapshot: snapshot, connection: conn) else { return }
        conn.earlyRefusal = refusal
        // evhttp now finds no body to read and hands the request to `handle` at once.
        let headers = HeaderList(evhttp_request_get_input_headers(req))
        headers.remove("Content-Length")
        headers.remove("Transfer-Encoding")
        headers.remove("Expect")
    }

    /// The refusal `handle` would make for this head, when it can be known without the body.
    /// Otherwise the head's facts and snapshot are kept for `handle` (the request is decided
    /// under the snapshot it started with, on facts built once).
    private func earlyRefusal(_ req: Request, snapshot: Snapshot, connection conn: ClientConnection) -> EarlyRefusal? {
        var rawTarget = ""
        if let uri = evhttp_request_get_uri(req) { rawTarget = String(cString: uri) }
        let declared = HeaderList(evhttp_request_get_input_headers(req))["Content-Length"].map(Worker.declaredLength) ?? 0
        if let refusal = precheck(req, rawTarget: rawTarget, bodyLength: declared, snapshot: snapshot) {
            return EarlyRefusal(refusal: refusal, path: "")
        }
        // A forward-auth decision request is decided by `handle` (Worker+ForwardAuth).
        if let forwardAuth = snapshot.config.forwardAuth, ForwardAuthRequest.isEndpoint(rawTarget, settings: forwardAuth) {
            return nil
        }
        guard let target = PathNormalizer.normalize(target: rawTarget, policy: snapshot.config.server.pathPolicy) else {
            return EarlyRefusal(refusal: pathRefusal(req, rawTarget: rawTarget, snapshot: snapshot),
                                path: AccessLogRecord.receivedPath(rawTarget))  // what was tried (SPEC §3.2)
        }
        let facts = requestFacts(req, target: target, snapshot: snapshot, connection: conn)
        conn.decidedHead = DecidedHead(req: req, snapshot: snapshot, facts: facts)
        if Decide.sessionEndpoint(facts, under: snapshot.decision) != nil { return nil }
        let auth = AuthContext(verifier: snapshot.verifier, cache: tokenCache, now: Clock.wallMs() / 1000)
        // An unknown `kid` may be waited for (a key refresh): that is the evhttp path's to decide.
        guard case .refuse(let refusal) = Decide.plan(facts, under: snapshot.decision, auth: auth),
              refusal.reason != .unknownKid else { return nil }
        conn.decidedHead = nil
        return EarlyRefusal(refusal: refusal, path: target.path)
    }

    /// A `Content-Length` value as a number: too large for an Int counts as the largest one;
    /// not a number counts as 0 (the framing check refuses it).
    static func declaredLength(_ value: String) -> Int {
        if let length = Int(value) { return length }
        return !value.isEmpty && value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) ? Int.max : 0
    }

    /// `handle`'s answer to a request refused before its body: the planned refusal, with the
    /// connection closed after a lingering read.
    func answerEarlyRefusal(_ refusal: EarlyRefusal, req: Request, log: inout AccessLogRecord, startNs: UInt64,
                            connection conn: ClientConnection) {
        log.path = refusal.path
        var planned = refusal.refusal
        planned.closeConnection = true  // after a lingering read: the body was never read
        refusePlanned(req, planned, log: &log, startNs: startNs)
        lingerThenClose(conn)
    }
}

/// A refusal decided on a request's head, carried out by `handle` once evhttp hands it over.
final class EarlyRefusal {
    let refusal: Refusal
    /// The normalized path, for the log ("" when the path was not reached or was refused).
    let path: String
    init(refusal: Refusal, path: String) {
        self.refusal = refusal
        self.path = path
    }
}

/// A request head decided before its body and not refused: the snapshot and facts `handle`
/// decides it on (the facts are built once per request, SPEC §3's snapshot rule holds).
final class DecidedHead {
    /// The request it belongs to (`handle` checks it).
    let req: Request
    let snapshot: Snapshot
    let facts: RequestFacts
    init(req: Request, snapshot: Snapshot, facts: RequestFacts) {
        self.req = req
        self.snapshot = snapshot
        self.facts = facts
    }
}

/// The raw-byte check of ``RawHeadScanner`` over an evbuffer's chains, without copying.
enum RawHeadCheck {
    enum Verdict {
        /// Every byte up to the head's end (or the buffer's) was read, and none is refused.
        case clean
        /// The buffer's bytes could not all be read (not expected): nothing is refused, and
        /// evhttp's own checks apply.
        case unread
        case refused
    }

    static func verdict(_ input: OpaquePointer, requestLine: Bool) -> Verdict {
        var scanner = RawHeadScanner(start: requestLine ? .requestLine : .fields, stopAfterRequestLine: requestLine)
        let total = evbuffer_get_length(input)
        var offset = 0
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: 8) { vecs in
            var position = evbuffer_ptr()
            while offset < total {
                guard evbuffer_ptr_set(input, &position, offset, EVBUFFER_PTR_SET) == 0 else { return .unread }
                let count = Int(evbuffer_peek(input, -1, &position, vecs.baseAddress, 8))
                guard count > 0 else { return .unread }
                for vec in vecs.prefix(min(count, 8)) {
                    switch scanner.feed(UnsafeRawBufferPointer(start: vec.iov_base, count: vec.iov_len)) {
                    case .needMore: offset += vec.iov_len
                    case .complete: return .clean
                    case .invalid: return .refused
                    }
                }
            }
            return .clean
        }
    }
}
