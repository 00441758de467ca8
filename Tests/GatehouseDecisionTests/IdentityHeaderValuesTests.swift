import XCTest
import GatehouseAuth
import GatehouseConfig
import GatehouseCore
@testable import GatehouseDecision

/// The identity headers of a verified token: the subject and the role list are checked and
/// joined once, when the token is verified (``VerifiedToken/subjectHeaderValue``), and must
/// give exactly what checking them on every request gave — hostile values included.
final class IdentityHeaderValuesTests: XCTestCase {
    private func token(subject: String?, roles: [String]) -> VerifiedToken {
        VerifiedToken(issuerName: "main", subject: subject, roles: roles, scopes: [], expiresAt: 2_000_000_000,
                      claims: .object(JSONObject([("email", .string("a@example.com\r\nX-Evil: 1"))])))
    }

    private func headers(_ identity: Identity?, everyName: Bool = false) -> [String] {
        var names = IdentityHeaders()
        names.claims = [("X-Auth-Email", "email")]
        return IdentityHeaderValues.headers(of: identity, names: names, everyName: everyName).map { "\($0.0)=\($0.1)" }
    }

    func testHostileSubjectsRolesAndClaimsAreLeftOutAsBefore() {
        let rows: [(name: String, subject: String?, roles: [String], plain: [String], every: [String])] = [
            ("clean", "alice", ["admin", "reader"],
             ["X-Auth-Subject=alice", "X-Auth-Roles=admin,reader", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=alice", "X-Auth-Roles=admin,reader", "X-Auth-Method=jwt", "X-Auth-Email="]),
            ("CR LF in the subject: no subject header (empty in forward auth)", "alice\r\nX-Admin: 1", ["admin"],
             ["X-Auth-Roles=admin", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=", "X-Auth-Roles=admin", "X-Auth-Method=jwt", "X-Auth-Email="]),
            ("DEL and NUL in the subject", "a\u{7F}b\u{0}", [],
             ["X-Auth-Roles=", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=", "X-Auth-Roles=", "X-Auth-Method=jwt", "X-Auth-Email="]),
            ("a role with a comma is left out of the list", "bob", ["a,b", "admin"],
             ["X-Auth-Subject=bob", "X-Auth-Roles=admin", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=bob", "X-Auth-Roles=admin", "X-Auth-Method=jwt", "X-Auth-Email="]),
            ("a control byte in a role: no roles header", "bob", ["admin\nX-Admin: 1"],
             ["X-Auth-Subject=bob", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=bob", "X-Auth-Roles=", "X-Auth-Method=jwt", "X-Auth-Email="]),
            ("no subject", nil, ["admin"],
             ["X-Auth-Roles=admin", "X-Auth-Method=jwt"],
             ["X-Auth-Subject=", "X-Auth-Roles=admin", "X-Auth-Method=jwt", "X-Auth-Email="]),
        ]
        for row in rows {
            let verified = token(subject: row.subject, roles: row.roles)
            let identity = Identity(method: .jwt, subject: verified.subject, roles: verified.roles, token: verified)
            XCTAssertEqual(headers(identity), row.plain, row.name)
            XCTAssertEqual(headers(identity, everyName: true), row.every, row.name)
        }
    }

    /// An identity made with other values than its token's uses its own, checked here.
    func testAnIdentityWithItsOwnSubjectAndRolesUsesThem() {
        let verified = token(subject: "alice", roles: ["admin"])
        let other = Identity(method: .jwt, subject: "bob\r\n", roles: ["reader", "x,y"], token: verified)
        XCTAssertEqual(headers(other), ["X-Auth-Roles=reader", "X-Auth-Method=jwt"])
        let renamed = Identity(method: .introspection, subject: "carol", roles: [], token: verified)
        XCTAssertEqual(headers(renamed), ["X-Auth-Subject=carol", "X-Auth-Roles=", "X-Auth-Method=introspection"])
    }

    func testTheTokenKeepsTheCheckedValues() {
        XCTAssertEqual(token(subject: "alice", roles: ["a", "b,c", "d"]).rolesHeaderValue, "a,d")
        XCTAssertEqual(token(subject: "alice", roles: []).subjectHeaderValue, "alice")
        XCTAssertNil(token(subject: "al\tice", roles: []).subjectHeaderValue, "HTAB is a control byte here too")
        XCTAssertNil(token(subject: nil, roles: []).subjectHeaderValue)
        XCTAssertNil(token(subject: "x", roles: ["\u{1B}[31m"]).rolesHeaderValue)
        // A class now: equal by value, whatever the reference.
        XCTAssertEqual(token(subject: "alice", roles: ["a"]), token(subject: "alice", roles: ["a"]))
        XCTAssertNotEqual(token(subject: "alice", roles: ["a"]), token(subject: "alice", roles: ["b"]))
    }
}
