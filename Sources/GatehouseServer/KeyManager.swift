import CLibevent
import GatehouseCore
import GatehouseAuth
import GatehouseConfig

/// Keeps the JWKS of issuers with a `jwks_url` fresh (SPEC §5.2): fetched at start and retried
/// with backoff (1 s doubling to 30 s) until they succeed; refreshed every 5 minutes or per
/// `Cache-Control: max-age` clamped to 1 min – 24 h; one extra refresh on an unknown `kid`, at
/// most every 30 s per issuer; a failed refresh keeps the last good set. Each change makes a
/// new verifier (new generation, so every loop's token cache drops what the old keys vouched
/// for), handed to `publish`.
///
/// Requests with an unknown `kid` wait on their loops (SPEC §3.2 Keys); a loop asks through
/// ``keysWanted(_:)``, and `settled` tells every loop when the issuer's refresh has ended
/// (success or failure), or at once when no refresh may run (the 30 s rule, or no URL).
///
/// Threading: lives on the main loop; fetches never block it (see ``HTTPFetcher``).
final class KeyManager {
    private struct Source {
        /// The `jwks_url`, or the discovery URL (then ``discoveryIssuer`` is set).
        var url: String
        var discoveryIssuer: String? = nil
        /// The last discovery document accepted (kept when a later one is refused).
        var metadata: ProviderMetadata? = nil
        var keys: JWKSet?
        var backoffSeconds: Int64 = 1
        var timer: OpaquePointer?
        var fetching = false
        var lastOnDemandNs: UInt64 = 0
    }

    private let base: OpaquePointer
    private let fetcher: HTTPFetcher
    private let metrics: Metrics
    private var sources: [String: Source] = [:]
    private(set) var verifier: JWTVerifier?
    var publish: (JWTVerifier?) -> Void = { _ in }
    /// Called with an issuer's name and its newly accepted discovery document, or nil when a
    /// reload dropped or replaced the issuer's source (its old document must not serve on).
    var metadataAccepted: (String, ProviderMetadata?) -> Void = { _, _ in }
    /// Called with an issuer's name when the loops waiting for its keys may decide.
    var settled: (String) -> Void = { _ in }
    /// Issuers whose current fetch loops wait for.
    private var awaited: Set<String> = []

    init(base: OpaquePointer, metrics: Metrics) {
        self.base = base
        self.fetcher = HTTPFetcher(base: base)
        self.metrics = metrics
    }

    /// Takes the verifier of a newly loaded config: keys already fetched for the same issuer and
    /// URL carry over (no gap after a reload); new URLs are fetched now. Returns the verifier
    /// to serve with.
    func configure(_ jwt: JWTSettings?) -> JWTVerifier? {
        var next: [String: Source] = [:]
        var verifier = jwt?.verifier
        for remote in jwt?.remoteJWKS ?? [] {
            let previous = sources.removeValue(forKey: remote.issuer)
            if var old = previous, old.url == remote.url, old.discoveryIssuer == remote.discoveryIssuer {
                if let keys = old.keys { verifier = verifier?.replacingKeys(keys, forIssuer: remote.issuer) }
                old.lastOnDemandNs = 0
                next[remote.issuer] = old
            } else {
                // A replaced source: its timer and its discovery document go with it.
                if let timer = previous?.timer { event_free(timer) }
                if previous?.metadata != nil { metadataAccepted(remote.issuer, nil) }
                next[remote.issuer] = Source(url: remote.url, discoveryIssuer: remote.discoveryIssuer)
            }
        }
        for (issuer, old) in sources {
            if let timer = old.timer { event_free(timer) }
            if old.metadata != nil { metadataAccepted(issuer, nil) }
        }
        sources = next
        self.verifier = verifier
        for (issuer, source) in sources where source.keys == nil && !source.fetching { fetch(issuer) }
        // Waiters for an issuer that no fetch will answer now: decide them.
        for issuer in awaited where sources[issuer]?.fetching != true { settle(issuer) }
        return verifier
    }

    /// Ready when every issuer has at least one key (SPEC §8 `/readyz`).
    var isReady: Bool {
        guard let verifier else { return true }
        return verifier.issuers.allSatisfy { !$0.keys.isEmpty }
    }

    /// A loop has requests waiting for `issuer`'s keys (an unknown `kid`): they wait for the
    /// fetch in flight, or for one started now — at most one on-demand fetch per 30 s per
    /// issuer (SPEC §5.2). When none may run, they are told at once.
    func keysWanted(_ issuer: String) {
        guard let source = sources[issuer] else { return settled(issuer) }
        if source.fetching {
            awaited.insert(issuer)
            return
        }
        let now = Clock.monotonicNs()
        if source.lastOnDemandNs != 0 && now - source.lastOnDemandNs < Self.onDemandIntervalNs { return settled(issuer) }
        sources[issuer]?.lastOnDemandNs = now
        awaited.insert(issuer)
        fetch(issuer)
    }

    /// At most one on-demand refresh per issuer in this time (SPEC §5.2).
    static let onDemandIntervalNs: UInt64 = 30_000_000_000

    private func settle(_ issuer: String) {
        if awaited.remove(issuer) != nil { settled(issuer) }
    }

    /// The provider metadata of a `discovery: true` issuer, once a document was accepted.
    func metadata(_ issuer: String) -> ProviderMetadata? { sources[issuer]?.metadata }

    private func fetch(_ issuer: String) {
        guard let source = sources[issuer] else { return }
        let url = source.url
        sources[issuer]?.fetching = true
        guard let expected = source.discoveryIssuer else {
            return fetcher.get(url) { [weak self] result in self?.fetched(issuer, url: url, result) }
        }
        fetcher.get(url) { [weak self] result in self?.discovered(issuer, url: url, expected: expected, result) }
    }

    /// SPEC §14.1: the discovery document arrived (or not). Accepted only when its `issuer` is
    /// the configured one exactly; then its `jwks_uri` is fetched as a `jwks_url` would be. A
    /// refused document fails this refresh like a failed fetch (backoff, last good keys kept).
    private func discovered(_ issuer: String, url: String, expected: String, _ result: Result<FetchedDocument, FetchError>) {
        let metadata: ProviderMetadata
        switch result {
        case .failure(let error): return fetched(issuer, url: url, .failure(FetchError(description: "discovery: \(error)")))
        case .success(let document):
            guard document.status == 200 else {
                return fetched(issuer, url: url, .failure(FetchError(description: "discovery: \(url): HTTP status \(document.status)")))
            }
            do throws(ProviderMetadataError) {
                metadata = try ProviderMetadata(json: document.body, expectedIssuer: expected)
            } catch {
                metrics.discoveryRefusals.add(1, ordering: .relaxed)
                return fetched(issuer, url: url, .failure(FetchError(description: "discovery document from \(url) refused: \(error)")))
            }
        }
        guard sources[issuer]?.url == url else { return fetched(issuer, url: url, result) }
        if sources[issuer]?.metadata != metadata {
            Gateway.say("discovery: issuer \(issuer): jwks_uri \(metadata.jwksURI)"
                        + (metadata.introspectionEndpoint.map { ", introspection_endpoint \($0)" } ?? ""))
        }
        sources[issuer]?.metadata = metadata
        metadataAccepted(issuer, metadata)
        fetcher.get(metadata.jwksURI) { [weak self] result in self?.fetched(issuer, url: url, result) }
    }

    private func fetched(_ issuer: String, url: String, _ result: Result<FetchedDocument, FetchError>) {
        // Whatever happens below, the waiters are told afterwards (after `publish`).
        defer { if sources[issuer]?.fetching != true { settle(issuer) } }
        guard var source = sources[issuer], source.url == url else { return }
        source.fetching = false
        var nextInSeconds: Int64
        switch parse(result) {
        case .success(let (keys, maxAge)):
            metrics.jwksRefreshes.add(1, ordering: .relaxed)
            source.keys = keys
            source.backoffSeconds = 1
            nextInSeconds = maxAge.map { min(max(Int64($0), 60), 86_400) } ?? 300
            verifier = verifier?.replacingKeys(keys, forIssuer: issuer)
            Gateway.say("jwks: \(keys.keys.count) key(s) for issuer \(issuer) from \(url); next refresh in \(nextInSeconds) s")
            for warning in keys.warnings { Gateway.say("jwks: issuer \(issuer): warning: \(warning)") }
            publish(verifier)
        case .failure(let error):
            metrics.jwksFailures.add(1, ordering: .relaxed)
            nextInSeconds = source.backoffSeconds
            source.backoffSeconds = min(source.backoffSeconds * 2, 30)
            Gateway.say("jwks: refresh for issuer \(issuer) failed: \(error); " +
                        (source.keys == nil ? "no keys yet" : "keeping the last good key set") + "; retry in \(nextInSeconds) s")
        }
        if let timer = source.timer { event_free(timer) }
        source.timer = schedule(issuer, afterSeconds: nextInSeconds)
        sources[issuer] = source
    }

    private func parse(_ result: Result<FetchedDocument, FetchError>) -> Result<(JWKSet, Int?), FetchError> {
        switch result {
        case .failure(let error): return .failure(error)
        case .success(let document):
            guard document.status == 200 else { return .failure(FetchError(description: "HTTP status \(document.status)")) }
            do {
                let keys = try JWKSet(jwksJSON: document.body)
                guard !keys.isEmpty else { return .failure(FetchError(description: "the key set has no usable key")) }
                return .success((keys, document.maxAgeSeconds))
            } catch {
                return .failure(FetchError(description: "\(error)"))
            }
        }
    }

    private func schedule(_ issuer: String, afterSeconds seconds: Int64) -> OpaquePointer? {
        let job = Unmanaged.passRetained(TimerJob { [weak self] in self?.fetch(issuer) }).toOpaque()
        let timer = gh_timer_new(base, 0, { _, _, arg in
            Unmanaged<TimerJob>.fromOpaque(arg!).takeRetainedValue().body()
        }, job)
        _ = gh_timer_add_ms(timer, seconds * 1000)
        return timer
    }
}

final class TimerJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
