import XCTest
@testable import GatehouseSessions

final class UsersFileTests: XCTestCase {
    private let bcrypt = "$2y$05$WlKYsZER6oEsoruH3uX.ouGL0e9G4DhAbj/jySYlJhDolWFIenBxq"
    private let sha512 = "$6$OWKiqdRPuncYHLEm$6cPVGp6K5cyYVLLL2Y8k3sjCYDWb1dXa.iDTAWpHe8DKGWjvoNz..IopHsX3s8Vx8cbk5EH4x1s82/pvlcqZ91"

    func testFixtureWrittenByHtpasswdAndMkpasswdParsesWithoutProblems() throws {
        let parsed = UsersFile.parse(try PasswordFixtures.text("users.htpasswd"), file: "users.htpasswd")
        XCTAssertEqual(parsed.problems, [])
        XCTAssertEqual(Set(parsed.users.keys), ["alice", "bob", "grace", "carol", "dave", "erin", "frank", "ivan"])
    }

    func testEveryWeakerSchemeWrittenByTheToolsIsRefusedOnItsLine() throws {
        let parsed = UsersFile.parse(try PasswordFixtures.text("refused.htpasswd"), file: "refused.htpasswd")
        XCTAssertEqual(parsed.users, [:])
        let expected: [(line: Int, names: String)] = [
            (2, "Apache MD5 ($apr1$)"), (3, "SHA-1 ({SHA})"), (4, "DES crypt"), (5, "a plaintext password"),
            (6, "SHA-256 crypt ($5$)"), (7, "MD5 crypt ($1$)"), (8, "yescrypt ($y$)"),
        ]
        XCTAssertEqual(parsed.problems.map(\.line), expected.map(\.line))
        for (problem, expect) in zip(parsed.problems, expected) {
            XCTAssertTrue(problem.message.contains(expect.names), problem.message)
            XCTAssertTrue(problem.message.contains("accepted are bcrypt ($2y$, $2b$, $2a$) and SHA-512 crypt ($6$)"), problem.message)
            XCTAssertEqual(problem.file, "refused.htpasswd")
        }
    }

    func testLinesAreParsedAsTheTableSays() {
        struct Case {
            let description: String
            let text: String
            let users: [String]
            let problems: [(line: Int, column: Int, contains: String)]
        }
        let cases: [Case] = [
            Case(description: "blank lines and comments are skipped", text: "\n# comment\n   \n  # indented comment\nalice:\(bcrypt)\n",
                 users: ["alice"], problems: []),
            Case(description: "CRLF line ends count lines and are trimmed", text: "# c\r\nalice:\(bcrypt)\r\nbob:\(sha512)\r\n",
                 users: ["alice", "bob"], problems: []),
            Case(description: "spaces and tabs around a line are ignored", text: "  alice:\(bcrypt)\t \n",
                 users: ["alice"], problems: []),
            Case(description: "no final newline", text: "alice:\(bcrypt)", users: ["alice"], problems: []),
            Case(description: "$2b$ and $2a$ are bcrypt too",
                 text: "a:$2b$05$CvqdposoPSC9HmJoJ01T2uhEJ0JEqog4orVZZOpqwSe4UprIBpdxO\nb:$2a$05$Lre2Q6LMOjx55Hq8YFkX.Otq8UtFGKQZMqpcSbzBpycVCB9CU2SdK",
                 users: ["a", "b"], problems: []),
            Case(description: "a line without a colon", text: "alice:\(bcrypt)\njustaname\n",
                 users: ["alice"], problems: [(2, 1, "expected `name:hash`")]),
            Case(description: "an empty name", text: ":\(bcrypt)\n", users: [], problems: [(1, 1, "empty user name")]),
            Case(description: "a name with a colon (two colons on the line)", text: "a:b:\(bcrypt)\n",
                 users: [], problems: [(1, 3, "a user name cannot contain `:`")]),
            Case(description: "a duplicate keeps the first and names its line", text: "alice:\(bcrypt)\n\nalice:\(sha512)\n",
                 users: ["alice"], problems: [(3, 1, "duplicate user \"alice\" (first defined on line 1")]),
            Case(description: "an empty hash", text: "alice:\n", users: [], problems: [(1, 7, "has no password hash")]),
            Case(description: "plaintext", text: "alice:secret\n", users: [], problems: [(1, 7, "plaintext")]),
            Case(description: "DES crypt, 13 characters", text: "erin:GynKaxKhUng1M\n", users: [], problems: [(1, 6, "DES crypt")]),
            Case(description: "$2x$ is the buggy bcrypt", text: "a:$2x$05$CvqdposoPSC9HmJoJ01T2uhEJ0JEqog4orVZZOpqwSe4UprIBpdxO\n",
                 users: [], problems: [(1, 3, "bcrypt $2x$")]),
            Case(description: "truncated bcrypt", text: "a:$2y$05$short\n", users: [], problems: [(1, 3, "malformed bcrypt hash")]),
            Case(description: "bcrypt cost out of range", text: "a:$2y$03$WlKYsZER6oEsoruH3uX.ouGL0e9G4DhAbj/jySYlJhDolWFIenBxq\n",
                 users: [], problems: [(1, 3, "malformed bcrypt hash")]),
            Case(description: "truncated SHA-512 crypt", text: "a:$6$salt$abc\n", users: [], problems: [(1, 3, "malformed SHA-512 crypt")]),
            Case(description: "unknown $ scheme", text: "a:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n",
                 users: [], problems: [(1, 3, "Argon2")]),
            Case(description: "a control character in a name", text: "al\u{1}ice:\(bcrypt)\n",
                 users: [], problems: [(1, 1, "control character")]),
            Case(description: "a name too long to ever log in", text: String(repeating: "n", count: 257) + ":\(bcrypt)\n",
                 users: [], problems: [(1, 1, "longer than 256 bytes")]),
            Case(description: "problems do not stop the rest", text: "a:plain\nb:\(bcrypt)\nc:{SHA}x\n",
                 users: ["b"], problems: [(1, 3, "plaintext"), (3, 3, "{SHA}")]),
        ]
        for testCase in cases {
            let parsed = UsersFile.parse(testCase.text, file: "users.htpasswd")
            XCTAssertEqual(Set(parsed.users.keys), Set(testCase.users), testCase.description)
            XCTAssertEqual(parsed.problems.count, testCase.problems.count, "\(testCase.description): \(parsed.problems)")
            for (problem, expect) in zip(parsed.problems, testCase.problems) {
                XCTAssertEqual(problem.line, expect.line, testCase.description)
                XCTAssertEqual(problem.column, expect.column, testCase.description)
                XCTAssertTrue(problem.message.contains(expect.contains), "\(testCase.description): \(problem.message)")
            }
        }
    }

    func testProblemsNeverRepeatTheHash() {
        let parsed = UsersFile.parse("alice:plaintext-secret\nbob:$apr1$VURyFNQr$I.hr1AA1lnrAcQWm2FTeT0\n", file: "u")
        for problem in parsed.problems {
            XCTAssertFalse(problem.message.contains("plaintext-secret"))
            XCTAssertFalse(problem.message.contains("VURyFNQr"))
        }
    }

    func testProblemDescribesItselfAsFileLineColumn() {
        let problem = UsersFile.parse("\n\nalice:x\n", file: "conf/users.htpasswd").problems[0]
        XCTAssertEqual(problem.location.description, "conf/users.htpasswd:3:7")
        XCTAssertTrue(problem.description.hasPrefix("conf/users.htpasswd:3:7: user \"alice\": "))
    }

    func testSchemesAreIdentifiedWithTheirCostOrRounds() {
        XCTAssertEqual(try PasswordScheme.identify(bcrypt).get(), .bcrypt(cost: 5))
        XCTAssertEqual(try PasswordScheme.identify(sha512).get(), .sha512Crypt(rounds: 5000))
        let rounds = "$6$rounds=10000$L/ulL6i2ML4CX2Mg$bZfF/Ar3sTnH82tcHrtWqwI.ndVnVNME.4V6uiCVxd7n59yUOi7fAnOee5CyWQDyFxkmbEv8wfS2tHk2ttItp0"
        XCTAssertEqual(try PasswordScheme.identify(rounds).get(), .sha512Crypt(rounds: 10000))
        let tooFew = "$6$rounds=999$L/ulL6i2ML4CX2Mg$bZfF/Ar3sTnH82tcHrtWqwI.ndVnVNME.4V6uiCVxd7n59yUOi7fAnOee5CyWQDyFxkmbEv8wfS2tHk2ttItp0"
        XCTAssertThrowsError(try PasswordScheme.identify(tooFew).get())
    }
}
