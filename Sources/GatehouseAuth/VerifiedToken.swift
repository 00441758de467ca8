/// A token that passed every check of ``JWTVerifier/verify(_:now:allowedIssuers:)``: who it
/// is for, what it grants, and the claims for `require.claims` and extra identity headers.
public struct VerifiedToken: Sendable, Equatable {
    /// The ``JWTIssuerConfig/name`` of the issuer that vouched for it.
    public let issuerName: String
    /// `sub`, when it is a string.
    public let subject: String?
    /// From the configured roles claim (SPEC §2 `jwt.roles_claim`).
    public let roles: [String]
    /// From `scope` (space-separated) and `scp` (an array, or a space-separated string).
    public let scopes: [String]
    /// `exp`, rounded up to whole seconds.
    public let expiresAt: Int64
    /// `nbf`, rounded up to whole seconds, when present.
    public let notBefore: Int64?
    /// `iat`, rounded up to whole seconds, when present.
    public let issuedAt: Int64?
    /// The whole claims set (a JSON object).
    public let claims: JSONValue

    public init(issuerName: String, subject: String?, roles: [String], scopes: [String], expiresAt: Int64,
                notBefore: Int64? = nil, issuedAt: Int64? = nil, claims: JSONValue) {
        self.issuerName = issuerName
        self.subject = subject
        self.roles = roles
        self.scopes = scopes
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.issuedAt = issuedAt
        self.claims = claims
    }

    /// Roles as the roles claim holds them: a string (one role, or several separated by spaces),
    /// or an array of strings (other elements are ignored). Anything else: no roles.
    static func roles(from value: JSONValue?) -> [String] {
        switch value {
        case .string(let string)?:
            return splitOnSpaces(string)
        case .array(let elements)?:
            return elements.compactMap { $0.stringValue }
        default:
            return []
        }
    }

    /// Scopes from `scope` (RFC 8693 §4.2: space-separated) and `scp` (an array, as Okta and
    /// others send it, or a space-separated string, as Microsoft Entra does).
    static func scopes(from claims: JSONObject) -> [String] {
        var scopes: [String] = []
        if case .string(let scope)? = claims["scope"] { scopes += splitOnSpaces(scope) }
        switch claims["scp"] {
        case .string(let scp)?: scopes += splitOnSpaces(scp)
        case .array(let elements)?: scopes += elements.compactMap { $0.stringValue }
        default: break
        }
        return scopes
    }

    private static func splitOnSpaces(_ string: String) -> [String] {
        string.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
    }
}
