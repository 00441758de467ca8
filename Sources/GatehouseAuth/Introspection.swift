import Crypto
import GatehouseCore

/// The SHA-256 of an opaque token: the only form in which a token is kept (cache keys, waits
/// shared by concurrent requests). SPEC §14.3.
public struct IntrospectionKey: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    public init(token: Substring) {
        var hasher = SHA256()
        var text = token   // a view of the request's header value: no copy of the bytes
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        hasher.finalize().withUnsafeBytes { raw in
            words = (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                     raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        }
        (a, b, c, d) = words
    }

    public init(token: String) { self.init(token: token[...]) }
}

/// Why an introspection answer was refused as a whole (it is then a failure: 503, not cached).
public struct IntrospectionAnswerError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A provider's RFC 7662 §2.2 answer, read strictly and kept in a form that does not depend on
/// the configuration (the cache holds it; each request evaluates it under its own snapshot with
/// ``evaluate(issuer:rolesClaim:leeway:now:)``).
///
/// Strict: one JSON object (``JSONParser``: duplicate members refused), `active` a JSON boolean
/// (required by RFC 7662; `"true"` is not `true`); when active, `exp`/`nbf`/`iat` numbers when
/// present, `sub`, `scope`, `client_id` strings when present, `aud` a string or an array of
/// strings when present. An inactive answer keeps nothing else (RFC 7662 §2.2: the provider
/// should say nothing more, and the gateway uses nothing more).
public struct IntrospectionAnswer: Sendable, Equatable {
    public let active: Bool
    /// The whole answer (for the roles claim, `require.claims` and identity headers); empty when inactive.
    public let claims: JSONValue
    /// `exp` in whole seconds (rounded up), when present.
    public let expiresAt: Int64?

    public static let inactive = IntrospectionAnswer(active: false, claims: .object(JSONObject([])), expiresAt: nil)

    init(active: Bool, claims: JSONValue, expiresAt: Int64?) {
        self.active = active
        self.claims = claims
        self.expiresAt = expiresAt
    }

    /// Reads an answer body. Bodies are at most 1 MiB (the fetcher's cap) and nest at most
    /// ``JSONParser/maxDepth`` deep.
    public init(json bytes: [UInt8]) throws(IntrospectionAnswerError) {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch { throw IntrospectionAnswerError("not valid JSON: \(error)") }
        guard case .object(let object) = document else { throw IntrospectionAnswerError("the answer is not a JSON object") }
        guard case .bool(let active)? = object["active"] else { throw IntrospectionAnswerError("\"active\" is missing or not a boolean") }
        guard active else {
            self = .inactive
            return
        }
        for name in ["exp", "nbf", "iat"] {
            if let value = object[name], !value.isNumber { throw IntrospectionAnswerError("\"\(name)\" is not a number") }
        }
        for name in ["sub", "scope", "client_id", "token_type", "username", "iss"] {
            if let value = object[name], value.stringValue == nil { throw IntrospectionAnswerError("\"\(name)\" is not a string") }
        }
        if let aud = object["aud"], aud.stringValue == nil {
            guard case .array(let items) = aud, items.allSatisfy({ $0.stringValue != nil }) else {
                throw IntrospectionAnswerError("\"aud\" is not a string or an array of strings")
            }
        }
        self.init(active: true, claims: document, expiresAt: Self.seconds(object["exp"]))
    }

    /// The verdict for one request, under its snapshot's issuer settings: the token's identity,
    /// or why it does not do (inactive, expired, not yet valid, another audience, issued by
    /// another issuer).
    public func evaluate(issuer: JWTIssuerConfig, rolesClaim: String, leeway: Int64, now: Int64,
                         cacheUntil: Int64) -> Result<VerifiedToken, Reason> {
        guard active, case .object(let object) = claims else { return .failure(.tokenInactive) }
        if let expiresAt, expiresAt + leeway <= now { return .failure(.tokenExpired) }
        let notBefore = Self.seconds(object["nbf"])
        if let notBefore, notBefore - leeway > now { return .failure(.tokenNotYetValid) }
        if let expected = issuer.issuer, let iss = object["iss"]?.stringValue, iss != expected { return .failure(.wrongIssuer) }
        if let audiences = issuer.audiences, !Self.audienceMatches(object["aud"], audiences) { return .failure(.wrongAudience) }
        return .success(VerifiedToken(issuerName: issuer.name, subject: object["sub"]?.stringValue,
                                      roles: VerifiedToken.roles(from: claims.value(atPath: rolesClaim)),
                                      scopes: VerifiedToken.scopes(from: object), expiresAt: expiresAt ?? cacheUntil,
                                      notBefore: notBefore, issuedAt: Self.seconds(object["iat"]), claims: claims))
    }

    private static func seconds(_ value: JSONValue?) -> Int64? {
        guard case .number(let number)? = value else { return nil }
        return number.ceilingSeconds
    }

    private static func audienceMatches(_ aud: JSONValue?, _ audiences: [String]) -> Bool {
        switch aud {
        case .string(let value)?: return audiences.contains(value)
        case .array(let values)?: return values.contains { $0.stringValue.map(audiences.contains) ?? false }
        default: return false
        }
    }
}

extension JSONValue {
    var isNumber: Bool { if case .number = self { return true } else { return false } }
}
