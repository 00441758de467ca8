import GatehouseCore
import XCTest
@testable import GatehouseAuth

final class RequirementTests: XCTestCase {
    static let token = VerifiedToken(
        issuerName: "idp", subject: "alice", roles: ["reader", "writer"], scopes: ["read:docs", "write:docs"],
        expiresAt: 4_102_444_800,
        claims: [
            "type": "admin", "org": ["id": 7, "name": "acme"], "org.id": "literal", "groups": ["a", "b", 3],
            "level": 3.0, "verified": true, "nothing": nil, "big": .number(JSONNumber(Int64(9_007_199_254_740_993))),
        ])

    func testRequirementsTable() {
        typealias C = Requirement.ClaimCondition
        let table: [(name: String, requirement: Requirement, expect: Reason?)] = [
            ("nothing required", Requirement(), nil),
            ("roles_any hit", Requirement(rolesAny: ["admin", "writer"]), nil),
            ("roles_any miss", Requirement(rolesAny: ["admin"]), .insufficientRole),
            ("roles_all hit", Requirement(rolesAll: ["reader", "writer"]), nil),
            ("roles_all partial", Requirement(rolesAll: ["reader", "admin"]), .insufficientRole),
            ("roles are case-sensitive", Requirement(rolesAny: ["Reader"]), .insufficientRole),
            ("scopes_all hit", Requirement(scopesAll: ["read:docs"]), nil),
            ("scopes_all miss", Requirement(scopesAll: ["read:docs", "admin:docs"]), .insufficientScope),
            ("role checked before scope", Requirement(rolesAny: ["admin"], scopesAll: ["nope"]), .insufficientRole),
            ("scope checked before claims", Requirement(scopesAll: ["nope"], claims: [C(path: "type", value: "x")]),
             .insufficientScope),
            ("claim string equal", Requirement(claims: [C(path: "type", value: "admin")]), nil),
            ("claim string differs", Requirement(claims: [C(path: "type", value: "user")]), .claimMismatch),
            ("claim literal dotted name first", Requirement(claims: [C(path: "org.id", value: "literal")]), nil),
            ("claim nested number is shadowed by the literal name", Requirement(claims: [C(path: "org.id", value: 7)]),
             .claimMismatch),
            ("claim nested path", Requirement(claims: [C(path: "org.name", value: "acme")]), nil),
            ("claim array contains", Requirement(claims: [C(path: "groups", value: "b")]), nil),
            ("claim array contains number", Requirement(claims: [C(path: "groups", value: 3.0)]), nil),
            ("claim array lacks", Requirement(claims: [C(path: "groups", value: "c")]), .claimMismatch),
            ("claim whole array equal", Requirement(claims: [C(path: "groups", value: ["a", "b", 3])]), nil),
            ("claim int equals float", Requirement(claims: [C(path: "level", value: 3)]), nil),
            ("claim number is not its string", Requirement(claims: [C(path: "level", value: "3")]), .claimMismatch),
            ("claim bool", Requirement(claims: [C(path: "verified", value: true)]), nil),
            ("claim bool is not string", Requirement(claims: [C(path: "verified", value: "true")]), .claimMismatch),
            ("claim null matches null", Requirement(claims: [C(path: "nothing", value: nil)]), nil),
            ("claim missing never matches", Requirement(claims: [C(path: "absent", value: nil)]), .claimMismatch),
            ("claim big integers exact", Requirement(claims: [C(path: "big", value: .number(JSONNumber(Int64(9_007_199_254_740_992))))]),
             .claimMismatch),
            ("claim object equal in any order", Requirement(claims: [C(path: "org", value: ["name": "acme", "id": 7])]), nil),
            ("every claim must hold", Requirement(claims: [C(path: "type", value: "admin"), C(path: "verified", value: false)]),
             .claimMismatch),
        ]
        for row in table {
            XCTAssertEqual(row.requirement.evaluate(Self.token), row.expect, row.name)
        }
    }

    func testEmptyRequirementIsEmpty() {
        XCTAssertTrue(Requirement().isEmpty)
        XCTAssertFalse(Requirement(scopesAll: ["x"]).isEmpty)
    }
}
