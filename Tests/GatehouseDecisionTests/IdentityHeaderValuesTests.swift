import Dispatch
import Synchronization
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
            // The token's values checked once (the proxy's identity) and checked here.
            for identity in [Identity(method: .jwt, token: verified),
                             Identity(method: .jwt, subject: verified.subject, roles: verified.roles, token: verified)] {
                XCTAssertEqual(headers(identity), row.plain, row.name)
                XCTAssertEqual(headers(identity, everyName: true), row.every, row.name)
            }
        }
    }

    /// An identity made from the token alone reads the token's subject and roles and gives
    /// the same headers and header block as one given them explicitly — hostile values too;
    /// one given other values keeps its own, in the block as well (the token's memo is not used).
    func testATokensOwnIdentityReadsTheToken() {
        var names = IdentityHeaders()
        names.claims = [("X-Auth-Email", "email")]
        for (subject, roles) in [("alice", ["admin", "reader"]), (nil, []), ("a\r\nb", ["x,y", "z"])] as [(String?, [String])] {
            let verified = token(subject: subject, roles: roles)
            let own = Identity(method: .jwt, token: verified)
            let explicit = Identity(method: .jwt, subject: subject, roles: roles, token: verified)
            XCTAssertTrue(own.hasTokenClaims)
            XCTAssertFalse(explicit.hasTokenClaims)
            XCTAssertEqual(own.subject, subject)
            XCTAssertEqual(own.roles, roles)
            XCTAssertEqual(headers(own), headers(explicit))
            XCTAssertEqual(headers(own, everyName: true), headers(explicit, everyName: true))
            let a = IdentityHeaderValues.block(of: own, names: names), b = IdentityHeaderValues.block(of: explicit, names: names)
            XCTAssertEqual(a.lines, b.lines)
            XCTAssertEqual(a.dropped, b.dropped)
        }
        let verified = token(subject: "alice", roles: ["admin"])
        _ = IdentityHeaderValues.block(of: Identity(method: .jwt, token: verified), names: IdentityHeaders())  // the memo filled
        let other = Identity(method: .jwt, subject: "bob", roles: ["reader"], token: verified)
        XCTAssertEqual(String(decoding: IdentityHeaderValues.block(of: other, names: IdentityHeaders()).lines, as: UTF8.self),
                       "X-Auth-Subject: bob\r\nX-Auth-Roles: reader\r\nX-Auth-Method: jwt\r\n")
        let session = Identity(method: .session, subject: "carol", roles: ["admin"], token: nil)
        XCTAssertFalse(session.hasTokenClaims)
        XCTAssertEqual(session.subject, "carol")
        XCTAssertEqual(session.roles, ["admin"])
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

    private func text(_ block: IdentityHeaderBlock) -> String { String(decoding: block.lines, as: UTF8.self) }

    /// The header lines say what the pairs say, for the hostile rows too (their bad values are
    /// not among the pairs), and each row's lines are those of its own token.
    func testTheBlockLinesAreThePairsWritten() {
        var names = IdentityHeaders()
        names.claims = [("X-Auth-Email", "email"), ("X-Auth-Team", "team")]
        let claims = JSONValue.object(JSONObject([("email", .string("a@example.com\r\nX-Evil: 1")), ("team", .string("blue\tgreen"))]))
        for (subject, roles) in [("alice", ["admin", "reader"]), ("alice\r\nX-Admin: 1", ["admin"]), ("bob", ["x\u{0}"])] {
            let verified = VerifiedToken(issuerName: "main", subject: subject, roles: roles, scopes: [], expiresAt: 2_000_000_000,
                                         claims: claims)
            let identity = Identity(method: .jwt, token: verified)
            let block = IdentityHeaderValues.block(of: identity, names: names)
            let pairs = IdentityHeaderValues.headers(of: identity, names: names)
            XCTAssertEqual(block.pairs.map { "\($0.0)=\($0.1)" }, pairs.map { "\($0.0)=\($0.1)" }, subject)
            XCTAssertEqual(text(block), pairs.map { "\($0.0): \($0.1)\r\n" }.joined(), subject)
            XCTAssertEqual(block.dropped, 0)
            XCTAssertFalse(text(block).contains("X-Evil") || text(block).contains("X-Admin"), subject)
        }
    }

    /// Pairs that reach the lines maker with a name that is not a token or a value with a
    /// control byte (none should: names are checked when the configuration is read, values
    /// when they are made) are left out of the lines and counted, never written broken.
    func testLinesLeaveOutWhatCannotBeWritten() {
        let made = IdentityHeaderValues.lines([("X-Ok", "a\tb"), ("X Bad", "v"), ("", "v"), ("X-Cr", "a\rb"), ("X-Lf", "a\nX-Evil: 1"),
                                               ("X-Nul", "a\u{0}"), ("X-Del", "\u{7F}"), ("X-\u{E9}", "v"), ("X-Utf8", "caf\u{E9}"),
                                               ("X:Colon", "v"), ("X-Empty", "")])
        XCTAssertEqual(String(decoding: made.lines, as: UTF8.self), "X-Ok: a\tb\r\nX-Utf8: caf\u{E9}\r\nX-Empty: \r\n")
        XCTAssertEqual(made.dropped, 8)
        XCTAssertEqual(made.pairs.count, 11)
    }

    /// A token presented again gets the block made for it the first time — for the same
    /// configuration and method only: a reload that renames a header, another claim path or an
    /// introspected identity of the same token make their own, with their own names.
    func testTheTokenKeepsItsBlockPerLayoutAndMethod() {
        let verified = token(subject: "alice", roles: ["admin"])
        let jwt = Identity(method: .jwt, token: verified)
        let names = IdentityHeaders()
        let first = IdentityHeaderValues.block(of: jwt, names: names)
        XCTAssertTrue(first === IdentityHeaderValues.block(of: jwt, names: names))
        XCTAssertTrue(first === IdentityHeaderValues.block(of: jwt, names: IdentityHeaders()), "an equal layout, reloaded")
        var renamed = IdentityHeaders()
        renamed.subject = "X-User"
        let second = IdentityHeaderValues.block(of: jwt, names: renamed)
        XCTAssertEqual(text(second), "X-User: alice\r\nX-Auth-Roles: admin\r\nX-Auth-Method: jwt\r\n")
        var claimed = renamed
        claimed.claims = [("X-Auth-Email", "email")]
        XCTAssertEqual(text(IdentityHeaderValues.block(of: jwt, names: claimed)),
                       "X-User: alice\r\nX-Auth-Roles: admin\r\nX-Auth-Method: jwt\r\n", "the email claim holds CR LF")
        claimed.claims = [("X-Auth-Issuer", "iss")]
        XCTAssertEqual(text(IdentityHeaderValues.block(of: jwt, names: claimed)),
                       "X-User: alice\r\nX-Auth-Roles: admin\r\nX-Auth-Method: jwt\r\n", "no iss claim")
        let introspected = Identity(method: .introspection, token: verified)
        XCTAssertEqual(text(IdentityHeaderValues.block(of: introspected, names: names)),
                       "X-Auth-Subject: alice\r\nX-Auth-Roles: admin\r\nX-Auth-Method: introspection\r\n")
        XCTAssertEqual(text(IdentityHeaderValues.block(of: jwt, names: names)), text(first))
        // An identity with its own subject or roles is never served the token's block, even with
        // the token's very values.
        let other = Identity(method: .jwt, subject: "bob", roles: verified.roles, token: verified)
        XCTAssertEqual(text(IdentityHeaderValues.block(of: other, names: names)),
                       "X-Auth-Subject: bob\r\nX-Auth-Roles: admin\r\nX-Auth-Method: jwt\r\n")
        let fewer = Identity(method: .jwt, subject: verified.subject, roles: [], token: verified)
        XCTAssertEqual(text(IdentityHeaderValues.block(of: fewer, names: names)),
                       "X-Auth-Subject: alice\r\nX-Auth-Roles: \r\nX-Auth-Method: jwt\r\n")
        let same = Identity(method: .jwt, subject: verified.subject, roles: verified.roles, token: verified)
        XCTAssertFalse(first === IdentityHeaderValues.block(of: same, names: names))
        XCTAssertEqual(text(IdentityHeaderValues.block(of: same, names: names)), text(first))
        XCTAssertEqual(text(IdentityHeaderValues.block(of: jwt, names: names)), text(first))
    }

    /// Threads asking for one token's headers under two layouts at once each get their own
    /// layout's, whole (the memo is behind a lock; bounded: 8 threads × 2,000 asks).
    func testOneTokenAskedFromManyThreadsGetsEachLayoutsOwn() {
        let verified = token(subject: "alice", roles: ["admin"])
        let identity = Identity(method: .jwt, token: verified)
        var renamed = IdentityHeaders()
        renamed.roles = "X-Roles"
        let layouts = [IdentityHeaders(), renamed]
        let expected = ["X-Auth-Subject: alice\r\nX-Auth-Roles: admin\r\nX-Auth-Method: jwt\r\n",
                        "X-Auth-Subject: alice\r\nX-Roles: admin\r\nX-Auth-Method: jwt\r\n"]
        let wrong = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<2_000 {
                let which = (thread + i) % 2
                let block = IdentityHeaderValues.block(of: identity, names: layouts[which])
                if String(decoding: block.lines, as: UTF8.self) != expected[which] { wrong.withLock { $0 += 1 } }
            }
        }
        XCTAssertEqual(wrong.withLock { $0 }, 0)
    }
}
