import XCTest
@testable import GatehouseSessions

final class PasswordVerifierTests: XCTestCase {
    func testEveryFixturePasswordVerifiesAgainstTheHashTheToolMade() throws {
        let users = try PasswordFixtures.users()
        let entries = try PasswordFixtures.passwords()
        XCTAssertEqual(entries.count, users.count)
        for entry in entries {
            let hash = try XCTUnwrap(users[entry.user], entry.user)
            XCTAssertTrue(PasswordVerifier.verify(password: entry.password, hash: hash), "\(entry.user) (\(entry.tool))")
        }
    }

    func testWrongPasswordsAreRefused() throws {
        let users = try PasswordFixtures.users()
        for entry in try PasswordFixtures.passwords() {
            let hash = users[entry.user]!
            // bcrypt reads 72 bytes: ivan's longer password only changes where bcrypt looks.
            let readsAll = entry.password.utf8.count < 72
            let wrong: [(String, String)] = [
                ("empty", ""), ("one character more", readsAll ? entry.password + "x" : "x"),
                ("one character less", readsAll ? String(entry.password.dropLast()) : String(entry.password.dropFirst())),
                ("case changed", entry.password.uppercased()), ("another user's", "correct horse battery staple!"),
            ]
            for (description, password) in wrong where password != entry.password {
                XCTAssertFalse(PasswordVerifier.verify(password: password, hash: hash), "\(entry.user): \(description)")
            }
        }
    }

    func testPasswordWithANulByteNeverVerifies() throws {
        let hash = try PasswordFixtures.users()["alice"]!
        var bytes = Array("correct horse battery staple".utf8)
        XCTAssertTrue(PasswordVerifier.verify(password: bytes, hash: hash))
        bytes.insert(0, at: 7)
        XCTAssertFalse(PasswordVerifier.verify(password: bytes, hash: hash))
        XCTAssertFalse(PasswordVerifier.verify(password: Array("correct".utf8) + [0], hash: hash))
    }

    func testHashesLibxcryptRefusesNeverVerify() {
        let refused = ["", "*0", "plain", "$apr1$VURyFNQr$I.hr1AA1lnrAcQWm2FTeT0", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "$2y$05$short"]
        for hash in refused {
            XCTAssertFalse(PasswordVerifier.verify(password: "secret", hash: hash), hash)
            XCTAssertFalse(PasswordVerifier.verify(password: "plain", hash: hash), hash)
        }
    }

    /// bcrypt reads at most 72 bytes: documented, and pinned so that nobody is surprised.
    func testBcryptIgnoresPasswordBytesBeyondTheSeventySecond() throws {
        let entry = try PasswordFixtures.passwords().first { $0.user == "ivan" }!
        let hash = try PasswordFixtures.users()["ivan"]!
        XCTAssertGreaterThan(entry.password.utf8.count, 72)
        let samePrefix = String(entry.password.prefix(72)) + "-something else"
        XCTAssertTrue(PasswordVerifier.verify(password: samePrefix, hash: hash))
        XCTAssertFalse(PasswordVerifier.verify(password: String(entry.password.prefix(71)), hash: hash))
    }

    func testHashPasswordMakesA2bBcryptHashThatVerifies() throws {
        let hash = try XCTUnwrap(PasswordVerifier.hash(password: "hunter2 ü", cost: 4))
        XCTAssertTrue(hash.hasPrefix("$2b$04$"), hash)
        XCTAssertEqual(hash.utf8.count, 60)
        XCTAssertEqual(try PasswordScheme.identify(hash).get(), .bcrypt(cost: 4))
        XCTAssertTrue(PasswordVerifier.verify(password: "hunter2 ü", hash: hash))
        XCTAssertFalse(PasswordVerifier.verify(password: "hunter2 u", hash: hash))
        let again = try XCTUnwrap(PasswordVerifier.hash(password: "hunter2 ü", cost: 4))
        XCTAssertNotEqual(hash, again, "every hash gets a fresh salt")
    }

    func testHashPasswordRefusesCostsOutsideBcryptsRangeAndNulBytes() {
        XCTAssertNil(PasswordVerifier.hash(password: "x", cost: 3))
        XCTAssertNil(PasswordVerifier.hash(password: "x", cost: 32))
        XCTAssertNil(PasswordVerifier.hash(password: [UInt8(ascii: "a"), 0], cost: 4))
    }

    func testDummyHashFollowsTheMostCommonSchemeAndCost() throws {
        let table: [(description: String, hashes: [String], expect: PasswordScheme)] = [
            ("no users: bcrypt at the default cost", [], .bcrypt(cost: 10)),
            ("bcrypt cost 5 fixtures", try Array(PasswordFixtures.users().values), .bcrypt(cost: 5)),
            ("all SHA-512 crypt with 10000 rounds", [try PasswordFixtures.users()["frank"]!], .sha512Crypt(rounds: 10000)),
            ("refused hashes are not counted", ["plain", "$apr1$VURyFNQr$I.hr1AA1lnrAcQWm2FTeT0"], .bcrypt(cost: 10)),
        ]
        for row in table {
            let dummy = PasswordVerifier.makeDummyHash(matching: row.hashes)
            XCTAssertEqual(try PasswordScheme.identify(dummy).get(), row.expect, row.description)
        }
    }

    func testATieGoesToTheCostlierScheme() throws {
        let users = try PasswordFixtures.users()
        // Measured here: bcrypt cost 5 ~1.4 ms, SHA-512 crypt 5000 rounds ~0.9 ms, 10000 ~1.8 ms.
        let table: [(String, String, PasswordScheme)] = [
            ("alice", "erin", .bcrypt(cost: 5)), ("erin", "alice", .bcrypt(cost: 5)),
            ("alice", "frank", .sha512Crypt(rounds: 10000)), ("erin", "frank", .sha512Crypt(rounds: 10000)),
        ]
        for (first, second, expect) in table {
            let dummy = PasswordVerifier.makeDummyHash(matching: [users[first]!, users[second]!])
            XCTAssertEqual(try PasswordScheme.identify(dummy).get(), expect, "\(first) + \(second)")
        }
    }

    func testUnknownUserIsRefusedAfterCheckingTheDummyHash() throws {
        let users = try PasswordFixtures.users()
        let verifier = PasswordVerifier(users: users)
        XCTAssertEqual(try PasswordScheme.identify(verifier.dummyHash).get(), .bcrypt(cost: 5))
        XCTAssertTrue(verifier.check(user: "alice", password: Array("correct horse battery staple".utf8)))
        XCTAssertFalse(verifier.check(user: "alice", password: Array("wrong".utf8)))
        XCTAssertFalse(verifier.check(user: "mallory", password: Array("correct horse battery staple".utf8)))
        XCTAssertFalse(verifier.check(user: "", password: []))
    }

    /// Not a benchmark: with cost 5 a check takes ~1.4 ms either way; the loose bound only
    /// catches an unknown user that skips the hash computation altogether (~1000× faster).
    func testUnknownUserCostsAboutAsMuchAsAWrongPassword() throws {
        let verifier = PasswordVerifier(users: try PasswordFixtures.users())
        func time(_ user: String) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<10 { _ = verifier.check(user: user, password: Array("nope".utf8)) }
            return Double(DispatchTime.now().uptimeNanoseconds - start)
        }
        _ = time("alice")
        let known = time("alice")
        let unknown = time("mallory")
        XCTAssertGreaterThan(unknown, known * 0.2, "unknown \(unknown) ns vs known \(known) ns")
    }

    func testConstantTimeEqualComparesWholeArrays() {
        XCTAssertTrue(PasswordVerifier.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(PasswordVerifier.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(PasswordVerifier.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertTrue(PasswordVerifier.constantTimeEqual([], []))
    }
}
