/// Fuzz target `introspection`: an RFC 7662 introspection answer (IntrospectionAnswer, SPEC
/// §14.3) as a provider (or whoever answers in its place) sends it, its evaluation for a request
/// and the cache that keeps it.
///
/// Invariants:
/// - an inactive answer keeps no claims and is never accepted;
/// - an accepted token is active, has the issuer's name, and when the answer has `exp` it is
///   not past (leeway allowed); when audiences are configured its `aud` holds one of them;
/// - the cache never keeps an entry past `min(exp, now + cache)` (inactive: 10 s) and never
///   grows beyond its capacity.
import GatehouseAuth
import GatehouseCore

private let issuer = JWTIssuerConfig(name: "sso", issuer: "https://sso.example.com", audiences: ["my-api"],
                                     algorithms: [.rs256], keys: JWKSet(keys: []))
private let cache = IntrospectionCache(capacity: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIntrospection(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let now: Int64 = 1_900_000_000
    guard let answer = try? IntrospectionAnswer(json: bytes) else { return 0 }
    if !answer.active {
        expect(answer == .inactive, "an inactive answer kept claims")
    }
    let entry = cache.store(answer, for: IntrospectionKey(token: String(decoding: bytes.prefix(16), as: UTF8.self)), now: now,
                            cacheSeconds: 60)
    expect(entry.until <= now + 60, "kept past the cache duration: \(entry.until)")
    if let exp = answer.expiresAt, answer.active { expect(entry.until <= max(exp, now), "kept past exp") }
    if !answer.active { expect(entry.until == now + IntrospectionCache.inactiveSeconds, "inactive kept \(entry.until - now) s") }
    expect(cache.count <= cache.capacity, "cache over capacity: \(cache.count)")
    switch answer.evaluate(issuer: issuer, rolesClaim: "realm_access.roles", leeway: 30, now: now, cacheUntil: entry.until) {
    case .success(let token):
        expect(answer.active, "an inactive answer was accepted")
        expect(token.issuerName == "sso", "issuer name \(token.issuerName)")
        if let exp = answer.expiresAt { expect(exp + 30 > now, "an expired answer was accepted") }
        switch answer.claims["aud"] {
        case .string(let aud)?: expect(aud == "my-api", "wrong audience accepted: \(aud)")
        case .array(let items)?: expect(items.contains { $0.stringValue == "my-api" }, "wrong audience list accepted")
        default: violated("accepted without aud while audiences are configured")
        }
    case .failure:
        break
    }
    return 0
}
