import CLibevent
import GatehouseCore
import GatehouseAuth
import GatehouseConfig

/// One loop's question to the main loop: what does the provider say about this token?
struct IntrospectionAsk: Sendable {
    let key: IntrospectionKey
    /// Sent to the provider, never kept: dropped when the call ends.
    let token: String
    /// The client address (SPEC §7.1) for the in-flight limit.
    let client: String
    /// The worker that asks (answered through its inbox).
    let worker: Int
    /// The settings of the asking request's own snapshot: its client credentials and cache.
    let settings: IntrospectionSettings
}

/// RFC 7662 calls for the whole process (SPEC §14.3), on the main loop: a shared cache by token
/// hash, one call per token however many requests (on however many loops) wait for it, at most
/// ``maxInFlightPerClient`` calls in flight per client address, and the endpoint taken from the
/// issuer's discovery document. Every ask is answered exactly once, through `answer`, with a
/// cache entry or a failure reason (`introspection_unavailable`, `introspection_busy`).
///
/// Threading: the main loop only (asks arrive through ``SharedState``).
final class Introspector {
    static let maxInFlightPerClient = 8
    /// The longest one call may take (connect to complete answer): then 503 for its waiters.
    static let deadlineMs: Int64 = 5_000

    private struct Call {
        var workers: Set<Int>
        let client: String
    }

    private let fetcher: HTTPFetcher
    private let metrics: Metrics
    private let cache = IntrospectionCache(capacity: 100_000)
    private var calls: [IntrospectionKey: Call] = [:]
    private var perClient: [String: Int] = [:]
    /// The introspection endpoint of an issuer, from its accepted discovery document.
    var endpoint: (String) -> String? = { _ in nil }
    var answer: (Int, IntrospectionKey, Result<IntrospectionCache.Entry, Reason>) -> Void = { _, _, _ in }

    init(base: OpaquePointer, metrics: Metrics) {
        fetcher = HTTPFetcher(base: base)
        self.metrics = metrics
    }

    func ask(_ ask: IntrospectionAsk) {
        let now = Clock.wallMs() / 1000
        if let entry = cache.lookup(ask.key, now: now) { return answer(ask.worker, ask.key, .success(entry)) }
        if calls[ask.key] != nil {
            calls[ask.key]!.workers.insert(ask.worker)
            return
        }
        guard let url = endpoint(ask.settings.issuerName) else {
            return answer(ask.worker, ask.key, .failure(.introspectionUnavailable))
        }
        let running = perClient[ask.client, default: 0]
        guard running < Self.maxInFlightPerClient else {
            metrics.introspectionBusy.add(1, ordering: .relaxed)
            return answer(ask.worker, ask.key, .failure(.introspectionBusy))
        }
        perClient[ask.client] = running + 1
        calls[ask.key] = Call(workers: [ask.worker], client: ask.client)
        let body = Array("token=".utf8) + IntrospectionSettings.formEncoded(ask.token) + Array("&token_type_hint=access_token".utf8)
        let settings = ask.settings
        fetcher.postForm(url, body: body, headers: [("Authorization", settings.authorization), ("Accept", "application/json")],
                         deadlineMs: Self.deadlineMs) { [weak self] result in
            self?.finished(ask.key, result, settings: settings)
        }
    }

    private func finished(_ key: IntrospectionKey, _ result: Result<FetchedDocument, FetchError>, settings: IntrospectionSettings) {
        guard let call = calls.removeValue(forKey: key) else { return }
        let left = perClient[call.client, default: 1] - 1
        perClient[call.client] = left > 0 ? left : nil
        let outcome: Result<IntrospectionCache.Entry, Reason>
        switch Self.answer(result) {
        case .success(let answer):
            metrics.introspectionCalls.add(1, ordering: .relaxed)
            outcome = .success(cache.store(answer, for: key, now: Clock.wallMs() / 1000, cacheSeconds: settings.cacheSeconds))
        case .failure(let why):
            metrics.introspectionFailures.add(1, ordering: .relaxed)
            Gateway.say("introspection: issuer \(settings.issuerName): \(why)")
            outcome = .failure(.introspectionUnavailable)
        }
        for worker in call.workers { answer(worker, key, outcome) }
    }

    /// A 200 with a strictly valid RFC 7662 answer, or why not.
    static func answer(_ result: Result<FetchedDocument, FetchError>) -> Result<IntrospectionAnswer, FetchError> {
        switch result {
        case .failure(let error): return .failure(error)
        case .success(let document):
            guard document.status == 200 else { return .failure(FetchError(description: "HTTP status \(document.status)")) }
            do throws(IntrospectionAnswerError) {
                return .success(try IntrospectionAnswer(json: document.body))
            } catch {
                return .failure(FetchError(description: "answer refused: \(error)"))
            }
        }
    }
}

extension IntrospectionSettings {
    /// A form value (`application/x-www-form-urlencoded`).
    static func formEncoded(_ text: String) -> [UInt8] { formEncode(Array(text.utf8)) }
}
