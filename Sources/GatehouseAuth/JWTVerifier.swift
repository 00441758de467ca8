import GatehouseCore
import Synchronization

/// Source of ``JWTVerifier/generation`` values: every verifier gets a new one, so a cache can
/// tell that keys or settings changed.
private let generationCounter = Atomic<UInt64>(1)

/// Verifies JWS compact Bearer tokens against the configured issuers (SPEC §5.1; RFC 7515,
/// RFC 7519, RFC 8725). Pure and immutable: one instance is shared by every worker thread, and a
/// reload or JWKS refresh makes a new instance (with a new ``generation``) that is swapped in.
///
/// Checks run in this order, each failing with its own ``Reason``; everything up to the issuer
/// gate happens before any signature work:
/// 1. over 8 KiB → `tokenTooLarge`;
/// 2. not three canonical base64url parts, or the header not a JSON object → `malformedToken`;
/// 3. header `alg` missing, unknown or `none` → `algNotAllowed`; any `crit` → `unsupportedCrit`;
///    then the claims not a JSON object → `malformedToken`;
/// 4. `iss` picks the issuer (an entry without `issuer` only when it is the sole one) →
///    `unknownIssuer`; `alg` not in that issuer's allow-list → `algNotAllowed`; issuer not in
///    `allowedIssuers` → `issuerNotAllowed`;
/// 5. keys: none at all → `noKeys`; `kid` names no key → `unknownKid`; none of the first
///    ``maxKeysTried`` keys of the right type verifies → `badSignature`;
/// 6. `exp` missing or not a number → `malformedToken`; past (with leeway) → `tokenExpired`;
///    `nbf`/`iat` in the future (with leeway) → `tokenNotYetValid`; `aud` → `wrongAudience`.
///
/// The `jku`, `x5u`, `jwk` and `x5c` headers are never read: keys come from configuration only.
public final class JWTVerifier: Sendable {
    /// Tokens longer than this many bytes are refused before any parsing (SPEC §5.1).
    public static let maxTokenBytes = 8192
    /// Most keys a token's signature is checked against (SPEC §3.2 Keys): the first keys of its
    /// issuer, in key-set order, that fit its `alg` (and its `kid`, when it has one).
    public static let maxKeysTried = 8

    /// The trusted issuers, in configuration order.
    public let issuers: [JWTIssuerConfig]
    /// Clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
    public let leeway: Int64
    /// The dotted path of the roles claim (SPEC §2 `jwt.roles_claim`).
    public let rolesClaim: String
    /// Unique per verifier unless given: cached results from another generation are not reused.
    public let generation: UInt64

    public init(issuers: [JWTIssuerConfig], leeway: Int64 = 30, rolesClaim: String = "roles", generation: UInt64? = nil) {
        self.issuers = issuers
        self.leeway = min(max(leeway, 0), 1 << 32)
        self.rolesClaim = rolesClaim
        self.generation = generation ?? generationCounter.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// A new verifier (new generation) with `keys` for the issuer named `name`, as after a JWKS
    /// refresh. Unknown names change nothing but the generation.
    public func replacingKeys(_ keys: JWKSet, forIssuer name: String) -> JWTVerifier {
        JWTVerifier(issuers: issuers.map { $0.name == name ? $0.replacingKeys(keys) : $0 },
                    leeway: leeway, rolesClaim: rolesClaim)
    }

    /// Verifies `token` (the JWS compact serialization, without `Bearer `) at `now` (Unix
    /// seconds). `allowedIssuers` are issuer names a route accepts (nil: any).
    public func verify(_ token: Substring, now: Int64, allowedIssuers: Set<String>? = nil) -> Result<VerifiedToken, Reason> {
        check(token, now: now, allowedIssuers: allowedIssuers).result
    }

    /// ``verify(_:now:allowedIssuers:)-(Substring,_,_)``, and the name of the issuer the token
    /// was checked against: for a success, and for a failure found after the issuer gate (so
    /// that an `unknownKid` says whose keys to refresh); nil for earlier failures.
    public func verifyNamingIssuer(_ token: Substring, now: Int64,
                                   allowedIssuers: Set<String>? = nil) -> (Result<VerifiedToken, Reason>, issuer: String?) {
        let outcome = check(token, now: now, allowedIssuers: allowedIssuers)
        return (outcome.result, outcome.issuerName)
    }

    /// ``verify(_:now:allowedIssuers:)-(Substring,_,_)`` for a whole string.
    public func verify(_ token: String, now: Int64, allowedIssuers: Set<String>? = nil) -> Result<VerifiedToken, Reason> {
        check(Substring(token), now: now, allowedIssuers: allowedIssuers).result
    }

    /// The result, and for failures found after the issuer gate the issuer's name: a cached
    /// failure is only reused where that issuer is allowed (see ``VerifiedTokenCache``).
    struct Outcome {
        var result: Result<VerifiedToken, Reason>
        var gatedIssuer: String? = nil

        /// The verified token's issuer, or the issuer a failure after the gate was found at.
        var issuerName: String? {
            if case .success(let token) = result { return token.issuerName }
            return gatedIssuer
        }
    }

    func check(_ token: Substring, now: Int64, allowedIssuers: Set<String>?) -> Outcome {
        guard token.utf8.count <= Self.maxTokenBytes else { return Outcome(result: .failure(.tokenTooLarge)) }
        var token = token
        return token.withUTF8 { check(bytes: UnsafeRawBufferPointer($0), now: now, allowedIssuers: allowedIssuers) }
    }

    private func check(bytes: UnsafeRawBufferPointer, now: Int64, allowedIssuers: Set<String>?) -> Outcome {
        // 2. Shape: header.payload.signature (exactly two dots), each canonical base64url.
        var firstDot = -1, secondDot = -1
        for index in 0..<bytes.count where bytes[index] == UInt8(ascii: ".") {
            if firstDot < 0 { firstDot = index } else if secondDot < 0 { secondDot = index } else { secondDot = -1; break }
        }
        guard secondDot >= 0 else { return Outcome(result: .failure(.malformedToken)) }
        let headerText = UnsafeRawBufferPointer(rebasing: bytes[..<firstDot])
        let payloadText = UnsafeRawBufferPointer(rebasing: bytes[(firstDot + 1)..<secondDot])
        let signatureText = UnsafeRawBufferPointer(rebasing: bytes[(secondDot + 1)...])
        guard let headerCount = Base64URL.decodedCount(headerText.count),
              let payloadCount = Base64URL.decodedCount(payloadText.count),
              let signatureCount = Base64URL.decodedCount(signatureText.count)
        else { return Outcome(result: .failure(.malformedToken)) }
        // The three parts decode into one scratch buffer (on the stack for ordinary tokens): the
        // header and claims are parsed straight from it and the signature checked in place.
        let total = headerCount + payloadCount + signatureCount
        return withUnsafeTemporaryAllocation(byteCount: max(total, 1), alignment: 1) { scratch in
            let header = UnsafeMutableRawBufferPointer(rebasing: scratch[..<headerCount])
            let payload = UnsafeMutableRawBufferPointer(rebasing: scratch[headerCount..<(headerCount + payloadCount)])
            let signature = UnsafeMutableRawBufferPointer(rebasing: scratch[(headerCount + payloadCount)..<total])
            guard Base64URL.decode(headerText, into: header),
                  Base64URL.decode(payloadText, into: payload),
                  Base64URL.decode(signatureText, into: signature)
            else { return Outcome(result: .failure(.malformedToken)) }
            return check(header: UnsafeRawBufferPointer(header), payload: UnsafeRawBufferPointer(payload),
                         signature: UnsafeRawBufferPointer(signature),
                         signingInput: UnsafeRawBufferPointer(rebasing: bytes[..<secondDot]),
                         now: now, allowedIssuers: allowedIssuers)
        }
    }

    /// Steps 2 (the header a JSON object) to 6, on the decoded parts.
    private func check(header headerBytes: UnsafeRawBufferPointer, payload payloadBytes: UnsafeRawBufferPointer,
                       signature: UnsafeRawBufferPointer, signingInput: UnsafeRawBufferPointer,
                       now: Int64, allowedIssuers: Set<String>?) -> Outcome {
        func fail(_ reason: Reason, after issuer: String? = nil) -> Outcome {
            Outcome(result: .failure(reason), gatedIssuer: issuer)
        }
        guard case .object(let header)? = try? JSONParser.parse(headerBytes) else { return fail(.malformedToken) }

        // 3. Algorithm and critical extensions: header-only checks, before the claims are parsed.
        guard case .string(let algName)? = header["alg"], let alg = JWSAlgorithm(rawValue: algName) else {
            return fail(.algNotAllowed)
        }
        if header["crit"] != nil { return fail(.unsupportedCrit) }  // we understand no extension
        guard case .object(let claims)? = try? JSONParser.parse(payloadBytes) else { return fail(.malformedToken) }

        // 4. Issuer.
        let iss: String?
        switch claims["iss"] {
        case nil: iss = nil
        case .string(let value)?: iss = value
        default: return fail(.malformedToken)
        }
        var chosen: JWTIssuerConfig? = nil
        if let iss { chosen = issuers.first { $0.issuer == iss } }
        if chosen == nil, issuers.count == 1, issuers[0].issuer == nil { chosen = issuers[0] }
        guard let issuer = chosen else { return fail(.unknownIssuer) }
        guard issuer.algorithms.contains(alg) else { return fail(.algNotAllowed) }
        if let allowedIssuers, !allowedIssuers.contains(issuer.name) { return fail(.issuerNotAllowed) }

        // 5. Key and signature.
        let gated = issuer.name
        guard !issuer.keys.isEmpty else { return fail(.noKeys, after: gated) }
        let kid: String?
        switch header["kid"] {
        case nil: kid = nil
        case .string(let value)?: kid = value
        default: return fail(.malformedToken, after: gated)
        }
        var kidFound = false
        var verified = false
        var tried = 0
        for key in issuer.keys.keys {
            if let kid {
                guard key.kid == kid else { continue }
                kidFound = true
            }
            guard key.canVerify(alg) else { continue }
            // A token without `kid` (or a kid shared by many keys) costs at most this many
            // signature checks (SPEC §3.2 Keys): a later key is never tried.
            guard tried < Self.maxKeysTried else { break }
            tried += 1
            if key.isValidSignature(signature, for: signingInput, algorithm: alg) {
                verified = true
                break
            }
        }
        if !verified { return fail(kid != nil && !kidFound ? .unknownKid : .badSignature, after: gated) }

        // 6. Time and audience (RFC 7519 §4.1).
        guard case .number(let expNumber)? = claims["exp"] else { return fail(.malformedToken, after: gated) }
        let exp = expNumber.ceilingSeconds
        guard let nbf = Self.optionalDate(claims["nbf"]), let iat = Self.optionalDate(claims["iat"]) else {
            return fail(.malformedToken, after: gated)
        }
        if exp + leeway <= now { return fail(.tokenExpired, after: gated) }
        if let nbf = nbf.value, nbf - leeway > now { return fail(.tokenNotYetValid, after: gated) }
        if let iat = iat.value, iat - leeway > now { return fail(.tokenNotYetValid, after: gated) }
        if let audiences = issuer.audiences, !Self.audienceMatches(claims["aud"], audiences) {
            return fail(.wrongAudience, after: gated)
        }

        let claimsValue = JSONValue.object(claims)
        let subject = claims["sub"]?.stringValue
        let token = VerifiedToken(
            issuerName: issuer.name, subject: subject,
            roles: VerifiedToken.roles(from: claimsValue.value(atPath: rolesClaim)),
            scopes: VerifiedToken.scopes(from: claims),
            expiresAt: exp, notBefore: nbf.value, issuedAt: iat.value, claims: claimsValue)
        return Outcome(result: .success(token))
    }

    /// A present-or-absent NumericDate: nil when present but not a number; `.some(nil)` when absent.
    private struct OptionalDate { var value: Int64? }
    private static func optionalDate(_ value: JSONValue?) -> OptionalDate? {
        switch value {
        case nil: return OptionalDate(value: nil)
        case .number(let number)?: return OptionalDate(value: number.ceilingSeconds)
        default: return nil
        }
    }

    private static func audienceMatches(_ aud: JSONValue?, _ audiences: [String]) -> Bool {
        switch aud {
        case .string(let value)?:
            return audiences.contains(value)
        case .array(let values)?:
            return values.contains { value in value.stringValue.map(audiences.contains) ?? false }
        default:
            return false
        }
    }
}
