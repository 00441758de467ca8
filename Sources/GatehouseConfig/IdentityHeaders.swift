/// SPEC §2 `identity_headers`: the headers that tell the upstream who the caller is (SPEC §7.1).
/// The client's own copies of every one of them are always removed before forwarding.
public struct IdentityHeaders: Sendable {
    /// The caller's subject (`sub`, or the session's user).
    public var subject: String { didSet { update() } }
    /// The caller's roles, comma-separated.
    public var roles: String { didSet { update() } }
    /// How the caller authenticated: `jwt` or `session`.
    public var method: String { didSet { update() } }
    /// Extra headers, each carrying the claim at a dotted path, in configuration order.
    public var claims: [(header: String, claim: String)] {
        didSet { update() }
    }
    /// Every header name above, lowercased: what to strip from the client's request.
    public private(set) var allNames: [String]
    /// Every name and claim path above, as written: what identity headers made under this
    /// configuration were made for (a verified token keeps its headers for the last layout).
    public private(set) var layout: [String]

    public init(subject: String = "X-Auth-Subject", roles: String = "X-Auth-Roles", method: String = "X-Auth-Method",
                claims: [(header: String, claim: String)] = []) {
        self.subject = subject
        self.roles = roles
        self.method = method
        self.claims = claims
        self.allNames = Self.names(subject, roles, method, claims)
        self.layout = Self.layout(subject, roles, method, claims)
    }

    private mutating func update() {
        allNames = Self.names(subject, roles, method, claims)
        layout = Self.layout(subject, roles, method, claims)
    }

    private static func layout(_ subject: String, _ roles: String, _ method: String,
                               _ claims: [(header: String, claim: String)]) -> [String] {
        [subject, roles, method] + claims.flatMap { [$0.header, $0.claim] }
    }

    private static func names(_ subject: String, _ roles: String, _ method: String,
                              _ claims: [(header: String, claim: String)]) -> [String] {
        ([subject, roles, method] + claims.map(\.header)).map { $0.lowercased() }
    }
}
