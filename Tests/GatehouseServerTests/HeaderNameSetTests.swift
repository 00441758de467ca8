import XCTest
@testable import GatehouseServer

/// Header names against the sets of names the gateway drops (SPEC §7.1).
final class HeaderNameSetTests: XCTestCase {
    func testNamesMatchIgnoringASCIICaseAndOnlyWhole() {
        let dropped = HeaderNameSet(["connection", "te", "x-request-id"])
        let table: [(name: String, header: String, expected: Bool)] = [
            ("exact", "connection", true),
            ("any letter case", "CoNNection", true),
            ("a short name", "TE", true),
            ("a prefix of a name", "connect", false),
            ("a name with more after it", "connectionx", false),
            ("same length, other letters", "connectioz", false),
            ("another name", "host", false),
            ("empty", "", false),
            ("underscore is not a dash here", "x_request_id", false),
            ("non-ASCII of the same length", "conneçtion", false),
        ]
        for row in table {
            XCTAssertEqual(row.header.withCString { dropped.contains($0) }, row.expected, row.name)
        }
    }

    func testIdentityNamesFoldUnderscoresAsDashes() {
        // CGI, WSGI and PHP upstreams read X_Auth_Subject as X-Auth-Subject.
        let identity = HeaderNameSet(["X-Auth-Subject", "X-Email"], foldUnderscore: true)
        let table: [(name: String, header: String, expected: Bool)] = [
            ("configured spelling", "X-Auth-Subject", true),
            ("lowercase", "x-auth-subject", true),
            ("underscores", "X_Auth_Subject", true),
            ("mixed", "x-auth_SUBJECT", true),
            ("second name", "x_email", true),
            ("other name", "X-Auth-Roles", false),
        ]
        for row in table {
            XCTAssertEqual(row.header.withCString { identity.contains($0) }, row.expected, row.name)
        }
        XCTAssertFalse("x-auth-subject".withCString { HeaderNameSet([]).contains($0) }, "an empty set")
    }
}
