import Crypto
import Foundation
import XCTest
@testable import GatehouseSessions

final class SessionIDTests: XCTestCase {
    func testGeneratedIdsAre43Base64URLCharactersOf32Bytes() throws {
        for _ in 0..<200 {
            let id = SessionID.generate()
            XCTAssertEqual(id.value.utf8.count, 43)
            XCTAssertTrue(SessionID.isWellFormed(id.value))
            let padded = id.value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "="
            XCTAssertEqual(try XCTUnwrap(Data(base64Encoded: padded)).count, 32)
        }
    }

    func testGeneratedIdsDoNotRepeatAndUseEveryCharacter() {
        let ids = (0..<2000).map { _ in SessionID.generate().value }
        XCTAssertEqual(Set(ids).count, ids.count)
        // 2000 × 42 free characters: each of the 64 symbols is expected ~1300 times.
        var counts: [UInt8: Int] = [:]
        for id in ids { for byte in id.utf8.dropLast() { counts[byte, default: 0] += 1 } }
        XCTAssertEqual(counts.count, 64)
        XCTAssertGreaterThan(counts.values.min()!, 900)
        XCTAssertLessThan(counts.values.max()!, 1800)
    }

    func testGenerationUsesTheInjectedGenerator() {
        var first = SeededGenerator(state: 7)
        var second = SeededGenerator(state: 7)
        XCTAssertEqual(SessionID.generate(using: &first), SessionID.generate(using: &second))
        XCTAssertNotEqual(SessionID.generate(using: &first), SessionID.generate())
    }

    func testBase64URLMatchesFoundationsAlphabetWithoutPadding() {
        var generator = SeededGenerator(state: 1)
        for length in 0..<40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(SessionID.base64URL(bytes), expected, "\(length) bytes")
        }
    }

    func testCookieValuesAreCheckedBeforeHashing() {
        let good = String(repeating: "A", count: 42) + "-"
        let table: [(description: String, value: String, accepted: Bool)] = [
            ("43 base64url characters", good, true),
            ("42 characters", String(good.dropLast()), false),
            ("44 characters", good + "A", false),
            ("padding", String(good.dropLast()) + "=", false),
            ("standard base64 plus", String(good.dropLast()) + "+", false),
            ("standard base64 slash", String(good.dropLast()) + "/", false),
            ("a space", String(good.dropLast()) + " ", false),
            ("non-ASCII", String(good.dropLast(2)) + "é", false),
            ("empty", "", false),
        ]
        for row in table {
            XCTAssertEqual(SessionID(cookieValue: row.value) != nil, row.accepted, row.description)
        }
    }

    func testHashIsLowercaseHexSHA256OfTheCookieValue() {
        XCTAssertEqual(SessionID.hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let id = SessionID.generate()
        XCTAssertEqual(id.idHash, SHA256.hash(data: Array(id.value.utf8)).map { String(format: "%02x", $0) }.joined())
        XCTAssertEqual(id.idHash.utf8.count, 64)
        XCTAssertFalse(id.idHash.contains(id.value))
    }
}
