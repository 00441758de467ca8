import Synchronization

/// A token that passed every check of ``JWTVerifier/verify(_:now:allowedIssuers:)``: who it
/// is for, what it grants, and the claims for `require.claims` and extra identity headers.
///
/// A class of constants, not a struct: a verified token is copied out of the per-worker cache,
/// into the identity and the plan, on every authenticated request, and a copy of a struct of
/// two strings, two arrays and a JSON value was five reference-count pairs (~1,500
/// instructions per request, deploy/bench/callgrind-jwt.sh); a reference is one.
public final class VerifiedToken: Sendable, Equatable {
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
    /// `subject` as an identity header value: nil when absent or when it holds a control byte
    /// (``isHeaderText(_:)``). Made once, when the token is verified, not on every request
    /// that presents it again.
    public let subjectHeaderValue: String?
    /// `roles` as an identity header value (``roleList(_:)``): nil when it holds a control byte.
    public let rolesHeaderValue: String?
    /// The identity headers last made for this token (``identityHeaders(layout:method:make:)``).
    /// Behind a lock: a token is shared by the requests that present it.
    private let identityHeaderMemo = Mutex<IdentityHeaderBlock?>(nil)

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
        subjectHeaderValue = subject.flatMap { VerifiedToken.isHeaderText($0) ? $0 : nil }
        let list = VerifiedToken.roleList(roles)
        rolesHeaderValue = VerifiedToken.isHeaderText(list) ? list : nil
    }

    /// A value that may be sent as a header: no control byte, no DEL (SPEC §7.1: left out
    /// rather than sent broken).
    public static func isHeaderText(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { $0.allSatisfy { $0 >= 0x20 && $0 != 0x7F } }
    }

    /// Roles comma-joined, those with a comma left out. Joined by hand, byte-wise: `filter` +
    /// `contains(",")` (Foundation's string search) + `joined` cost ~5,000 instructions per
    /// request for one role.
    public static func roleList(_ roles: [String]) -> String {
        var list = ""
        var first = true
        for role in roles where !role.utf8.contains(UInt8(ascii: ",")) {
            if !first { list += "," }
            list += role
            first = false
        }
        return list
    }

    /// This token's identity headers under the `identity_headers` configuration `layout` for
    /// a caller authenticated by `method`: the block made for the same pair before, or `make()`
    /// (kept for the next request, in place of the one before: one configuration is live at a
    /// time, and a reload makes them once more). `make` must give the headers of this token's
    /// subject and roles as they are.
    public func identityHeaders(layout: [String], method: String,
                                make: () -> (pairs: [(String, String)], lines: [UInt8], dropped: Int)) -> IdentityHeaderBlock {
        if let memo = identityHeaderMemo.withLock({ $0 }), memo.layout == layout, memo.method == method { return memo }
        let made = make()
        let block = IdentityHeaderBlock(pairs: made.pairs, lines: made.lines, dropped: made.dropped, layout: layout,
                                        method: method)
        identityHeaderMemo.withLock { $0 = block }
        return block
    }

    public static func == (a: VerifiedToken, b: VerifiedToken) -> Bool {
        a === b || (a.issuerName == b.issuerName && a.subject == b.subject && a.roles == b.roles && a.scopes == b.scopes
            && a.expiresAt == b.expiresAt && a.notBefore == b.notBefore && a.issuedAt == b.issuedAt && a.claims == b.claims)
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
