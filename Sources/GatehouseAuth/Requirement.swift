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

    /// The four lists, behind one reference: a route's requirement is copied out of the
    /// config for every request on it, and a copy of four arrays was four reference-count
    /// pairs (~270 instructions per request, deploy/bench/callgrind-jwt.sh); a reference is one.
    private final class Lists: Sendable {
        let rolesAny: [String]
        let rolesAll: [String]
        let scopesAll: [String]
        let claims: [ClaimCondition]
        init(rolesAny: [String], rolesAll: [String], scopesAll: [String], claims: [ClaimCondition]) {
            self.rolesAny = rolesAny
            self.rolesAll = rolesAll
            self.scopesAll = scopesAll
            self.claims = claims
        }
    }

    private let lists: Lists

    /// At least one of these roles (none listed: no condition).
    public var rolesAny: [String] { lists.rolesAny }
    /// Every one of these roles.
    public var rolesAll: [String] { lists.rolesAll }
    /// Every one of these scopes.
    public var scopesAll: [String] { lists.scopesAll }
    /// Claim conditions, checked in order.
    public var claims: [ClaimCondition] { lists.claims }

    public init(rolesAny: [String] = [], rolesAll: [String] = [], scopesAll: [String] = [], claims: [ClaimCondition] = []) {
        lists = Lists(rolesAny: rolesAny, rolesAll: rolesAll, scopesAll: scopesAll, claims: claims)
    }

    public static func == (a: Requirement, b: Requirement) -> Bool {
        a.lists === b.lists || (a.rolesAny == b.rolesAny && a.rolesAll == b.rolesAll && a.scopesAll == b.scopesAll
                                && a.claims == b.claims)
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
