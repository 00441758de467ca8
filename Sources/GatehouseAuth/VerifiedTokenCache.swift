import GatehouseCore

/// Remembers verification results per token string so that a repeated token costs a hash
/// lookup instead of a signature check (an ES384 check is ~550 µs), for good and bad tokens.
///
/// Not thread-safe, by design: each worker (event loop) owns one and uses it only from its own
/// thread, so lookups take no locks.
///
/// It never accepts what ``JWTVerifier`` would refuse: a hit is used only when it came from the
/// same verifier generation (keys and settings unchanged), and is re-checked against `now`
/// (`exp`, `nbf`, `iat` with leeway) and against the route's `allowedIssuers`, in the same order
/// as the full check. Failures are remembered for a short time (``negativeTTL``) with the same
/// reason; a failure that depends on the clock running forward (`tokenNotYetValid`) or on the
/// route (`issuerNotAllowed`) is not remembered.
public final class VerifiedTokenCache {
    private struct Positive {
        let token: VerifiedToken
        let generation: UInt64
    }

    private struct Negative {
        let reason: Reason
        /// Set when the failure came after the issuer gate: then a route that does not allow
        /// this issuer gets `issuerNotAllowed`, as from the full check.
        let gatedIssuer: String?
        let generation: UInt64
        let expiresAt: Int64
    }

    /// Most verified tokens kept.
    public let capacity: Int
    /// Most failed tokens kept.
    public let negativeCapacity: Int
    /// Seconds a failure is remembered.
    public let negativeTTL: Int64

    /// A token with its hash computed once: a miss looks in both tables and inserts into one,
    /// and hashing a ~200-byte token three times cost more than the lookups themselves.
    private struct Key: Hashable {
        let token: String
        let hash: Int
        init(_ token: String) {
            self.token = token
            self.hash = token.hashValue
        }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.token == b.token }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    private var positive: [Key: Positive] = [:]
    private var negative: [Key: Negative] = [:]

    public init(capacity: Int = 4096, negativeCapacity: Int = 1024, negativeTTL: Int64 = 30) {
        self.capacity = max(capacity, 1)
        self.negativeCapacity = max(negativeCapacity, 1)
        self.negativeTTL = negativeTTL
    }

    /// Number of remembered verified and failed tokens.
    public var count: (verified: Int, failed: Int) { (positive.count, negative.count) }

    /// Forgets everything.
    public func removeAll() {
        positive.removeAll(keepingCapacity: true)
        negative.removeAll(keepingCapacity: true)
    }

    /// The result of `verifier.verify(token, now:, allowedIssuers:)`, from the cache when it
    /// can be, else computed and remembered.
    public func verify(_ token: String, with verifier: JWTVerifier, now: Int64,
                       allowedIssuers: Set<String>? = nil) -> Result<VerifiedToken, Reason> {
        let key = Key(token)
        if let hit = positive[key] {
            if hit.generation == verifier.generation {
                let result = recheck(hit.token, leeway: verifier.leeway, now: now, allowedIssuers: allowedIssuers)
                if case .failure(.tokenExpired) = result { positive[key] = nil }  // never valid again
                return result
            }
            positive[key] = nil
        }
        if let hit = negative[key] {
            if hit.generation == verifier.generation, now < hit.expiresAt {
                if let issuer = hit.gatedIssuer, let allowedIssuers, !allowedIssuers.contains(issuer) {
                    return .failure(.issuerNotAllowed)
                }
                return .failure(hit.reason)
            }
            negative[key] = nil
        }

        let outcome = verifier.check(token, now: now, allowedIssuers: allowedIssuers)
        switch outcome.result {
        case .success(let verified):
            makeRoom(in: &positive, capacity: capacity)
            positive[key] = Positive(token: verified, generation: verifier.generation)
        case .failure(let reason):
            switch reason {
            case .tokenNotYetValid, .issuerNotAllowed, .tokenTooLarge:
                break  // depends on the clock or the route, or costs nothing to find again
            default:
                makeRoom(in: &negative, capacity: negativeCapacity)
                negative[key] = Negative(reason: reason, gatedIssuer: outcome.gatedIssuer,
                                           generation: verifier.generation, expiresAt: now + negativeTTL)
            }
        }
        return outcome.result
    }

    /// The checks of ``JWTVerifier`` whose answer can change while a token sits in the cache,
    /// in the verifier's order: issuer gate, then `exp`, then `nbf`/`iat`.
    private func recheck(_ token: VerifiedToken, leeway: Int64, now: Int64,
                         allowedIssuers: Set<String>?) -> Result<VerifiedToken, Reason> {
        if let allowedIssuers, !allowedIssuers.contains(token.issuerName) { return .failure(.issuerNotAllowed) }
        if token.expiresAt + leeway <= now { return .failure(.tokenExpired) }
        if let nbf = token.notBefore, nbf - leeway > now { return .failure(.tokenNotYetValid) }
        if let iat = token.issuedAt, iat - leeway > now { return .failure(.tokenNotYetValid) }
        return .success(token)
    }

    /// When full: forget everything at once, keeping the table's storage. Measured under a
    /// stream of distinct tokens, a partial sweep (filter, then delete one by one down to ¾)
    /// cost more than the verifications it saved: ~12 µs of dictionary work per miss and
    /// multi-millisecond stalls. A full table of live tokens just refills from the verifier.
    private func makeRoom<Entry>(in table: inout [Key: Entry], capacity: Int) {
        guard table.count >= capacity else { return }
        table.removeAll(keepingCapacity: true)
    }
}
