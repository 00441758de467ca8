import GatehouseCore

/// Remembers verification results per token string so that a repeated token costs a hash
/// lookup instead of a signature check (an ES384 check is ~550 µs), for good and bad tokens.
/// Fixed size: when the tables are full, a new token replaces the oldest entry of its set
/// (``TokenTable``), so a stream of distinct tokens costs a constant amount per miss.
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

    /// Most verified tokens kept (a power of two: the `capacity` asked for, rounded down).
    public var capacity: Int { positive.slotCount }
    /// Most failed tokens kept (a power of two, like ``capacity``).
    public var negativeCapacity: Int { negative.slotCount }
    /// Seconds a failure is remembered.
    public let negativeTTL: Int64

    /// Fixed tables: a new token replaces an old one of its set (see ``TokenTable``). Under a
    /// stream of distinct tokens the cache's own work per miss (hash, two lookups, an insert,
    /// freeing the replaced entry) is ~3,500 instructions; the `[String: Entry]` dictionaries
    /// they replace took ~5,100 (String hashing, probing, and a full clear every `capacity`
    /// misses). Measured with deploy/bench/callgrind-jwt.sh.
    private let positive: TokenTable<Positive>
    private let negative: TokenTable<Negative>
    private let hasher: TokenHasher

    public init(capacity: Int = 4096, negativeCapacity: Int = 1024, negativeTTL: Int64 = 30) {
        positive = TokenTable(capacity: capacity)
        negative = TokenTable(capacity: negativeCapacity)
        hasher = TokenHasher()
        self.negativeTTL = negativeTTL
    }

    /// Number of remembered verified and failed tokens.
    public var count: (verified: Int, failed: Int) { (positive.count, negative.count) }

    /// Forgets everything.
    public func removeAll() {
        positive.removeAll()
        negative.removeAll()
    }

    /// The result of `verifier.verify(token, now:, allowedIssuers:)`, from the cache when it
    /// can be, else computed and remembered. `token` is kept as it is when remembered: a
    /// substring of the request's `Authorization` value costs no copy.
    public func verify(_ token: Substring, with verifier: JWTVerifier, now: Int64,
                       allowedIssuers: Set<String>? = nil) -> Result<VerifiedToken, Reason> {
        verifyNamingIssuer(token, with: verifier, now: now, allowedIssuers: allowedIssuers).0
    }

    /// ``verify(_:with:now:allowedIssuers:)-(Substring,_,_,_)``, and the issuer's name as
    /// ``JWTVerifier/verifyNamingIssuer(_:now:allowedIssuers:)`` gives it.
    public func verifyNamingIssuer(_ token: Substring, with verifier: JWTVerifier, now: Int64,
                                   allowedIssuers: Set<String>? = nil) -> (Result<VerifiedToken, Reason>, issuer: String?) {
        // Not worth remembering, and not worth hashing 8 KiB and more.
        guard token.utf8.count <= JWTVerifier.maxTokenBytes else { return (.failure(.tokenTooLarge), nil) }
        // The token's bytes are read once, for the hash and the lookup of a hit.
        var bytes = token
        let (hash, found) = bytes.withUTF8 { bytes in
            let hash = hasher.hash(bytes)
            return (hash, positive.slot(of: bytes, hash: hash))
        }
        if let slot = found {
            if let answer = answer(positiveSlot: slot, verifier: verifier, now: now, allowedIssuers: allowedIssuers) {
                return answer
            }
            positive.remove(at: slot)
        }
        if let slot = negative.slot(of: token, hash: hash) {
            let hit = negative.entry(at: slot)
            if hit.generation == verifier.generation, now < hit.expiresAt {
                if let issuer = hit.gatedIssuer, let allowedIssuers, !allowedIssuers.contains(issuer) {
                    return (.failure(.issuerNotAllowed), nil)
                }
                return (.failure(hit.reason), hit.gatedIssuer)
            }
            negative.remove(at: slot)
        }

        let outcome = verifier.check(token, now: now, allowedIssuers: allowedIssuers)
        switch outcome.result {
        case .success(let verified):
            positive.insert(token, hash: hash, entry: Positive(token: verified, generation: verifier.generation))
        case .failure(let reason):
            switch reason {
            case .tokenNotYetValid, .issuerNotAllowed:
                break  // depends on the clock or the route
            default:
                negative.insert(token, hash: hash, entry: Negative(reason: reason, gatedIssuer: outcome.gatedIssuer,
                                                                 generation: verifier.generation,
                                                                 expiresAt: now + negativeTTL))
            }
        }
        return (outcome.result, outcome.issuerName)
    }

    /// ``verifyNamingIssuer(_:with:now:allowedIssuers:)`` for the token at byte offsets `bytes`
    /// of `header` (an `Authorization` value), when the answer is a remembered verified token
    /// of this verifier's generation; nil otherwise (not remembered, remembered as a failure,
    /// of an older generation, too large), and then the caller asks
    /// ``verifyNamingIssuer(_:with:now:allowedIssuers:)``, which does the rest. The hit of a
    /// token presented again, without making a substring of the header first.
    public func rememberedNamingIssuer(in header: inout String, bytes: Range<Int>, with verifier: JWTVerifier, now: Int64,
                                       allowedIssuers: Set<String>? = nil) -> (Result<VerifiedToken, Reason>, issuer: String?)? {
        guard bytes.count <= JWTVerifier.maxTokenBytes else { return nil }
        let found = header.withUTF8 { all -> Int? in
            let token = UnsafeBufferPointer(rebasing: all[bytes])
            return positive.slot(of: token, hash: hasher.hash(token))
        }
        guard let slot = found else { return nil }
        return answer(positiveSlot: slot, verifier: verifier, now: now, allowedIssuers: allowedIssuers)
    }

    /// The answer of the verified token in `slot`, rechecked; nil when it is of an older
    /// generation (the caller removes it).
    private func answer(positiveSlot slot: Int, verifier: JWTVerifier, now: Int64,
                        allowedIssuers: Set<String>?) -> (Result<VerifiedToken, Reason>, issuer: String?)? {
        let hit = positive.entry(at: slot)
        guard hit.generation == verifier.generation else { return nil }
        let result = recheck(hit.token, leeway: verifier.leeway, now: now, allowedIssuers: allowedIssuers)
        if case .failure(.tokenExpired) = result { positive.remove(at: slot) }  // never valid again
        return (result, hit.token.issuerName)
    }

    /// ``verify(_:with:now:allowedIssuers:)-(Substring,_,_,_)`` for a whole string.
    public func verify(_ token: String, with verifier: JWTVerifier, now: Int64,
                       allowedIssuers: Set<String>? = nil) -> Result<VerifiedToken, Reason> {
        verify(Substring(token), with: verifier, now: now, allowedIssuers: allowedIssuers)
    }

    /// `allowed.contains(issuer)`, by comparing names when there are few: a route names one
    /// issuer or two, and hashing the name (SipHash) cost more than the rest of a cache hit.
    static func allows(_ allowed: Set<String>, _ issuer: String) -> Bool {
        allowed.count <= 8 ? allowed.contains { $0 == issuer } : allowed.contains(issuer)
    }

    /// The checks of ``JWTVerifier`` whose answer can change while a token sits in the cache,
    /// in the verifier's order: issuer gate, then `exp`, then `nbf`/`iat`.
    private func recheck(_ token: VerifiedToken, leeway: Int64, now: Int64,
                         allowedIssuers: Set<String>?) -> Result<VerifiedToken, Reason> {
        if let allowedIssuers, !VerifiedTokenCache.allows(allowedIssuers, token.issuerName) { return .failure(.issuerNotAllowed) }
        if token.expiresAt + leeway <= now { return .failure(.tokenExpired) }
        if let nbf = token.notBefore, nbf - leeway > now { return .failure(.tokenNotYetValid) }
        if let iat = token.issuedAt, iat - leeway > now { return .failure(.tokenNotYetValid) }
        return .success(token)
    }
}
