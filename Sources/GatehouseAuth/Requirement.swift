import GatehouseCore

/// What a route demands of an authenticated caller (SPEC §2 `routes[].require`). Every listed
/// condition must hold; an empty requirement is always satisfied.
public struct Requirement: Sendable, Equatable {
    /// One `require.claims` entry: the value at a dotted claim path must equal `value`, or be an
    /// array that contains it.
    public struct ClaimCondition: Sendable, Equatable {
        public let path: String
        public let value: JSONValue
        public init(path: String, value: JSONValue) {
            self.path = path
            self.value = value
        }
    }

    /// At least one of these roles (none listed: no condition).
    public let rolesAny: [String]
    /// Every one of these roles.
    public let rolesAll: [String]
    /// Every one of these scopes.
    public let scopesAll: [String]
    /// Claim conditions, checked in order.
    public let claims: [ClaimCondition]

    public init(rolesAny: [String] = [], rolesAll: [String] = [], scopesAll: [String] = [], claims: [ClaimCondition] = []) {
        self.rolesAny = rolesAny
        self.rolesAll = rolesAll
        self.scopesAll = scopesAll
        self.claims = claims
    }

    /// True when nothing is required beyond authentication.
    public var isEmpty: Bool { rolesAny.isEmpty && rolesAll.isEmpty && scopesAll.isEmpty && claims.isEmpty }

    /// nil when `token` satisfies every condition; otherwise the first failing kind:
    /// `insufficientRole`, then `insufficientScope`, then `claimMismatch`.
    public func evaluate(_ token: VerifiedToken) -> Reason? {
        if !rolesAny.isEmpty, !rolesAny.contains(where: token.roles.contains) { return .insufficientRole }
        if !rolesAll.allSatisfy(token.roles.contains) { return .insufficientRole }
        if !scopesAll.allSatisfy(token.scopes.contains) { return .insufficientScope }
        for condition in claims where !Self.matches(token.claims.value(atPath: condition.path), condition.value) {
            return .claimMismatch
        }
        return nil
    }

    private static func matches(_ claim: JSONValue?, _ expected: JSONValue) -> Bool {
        guard let claim else { return false }
        if claim == expected { return true }
        if case .array(let elements) = claim { return elements.contains(expected) }
        return false
    }
}
