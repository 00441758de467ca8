import XCTest
@testable import GatehouseServer

/// The names listed by `Connection` headers (RFC 9110 §7.6.1), hostile forms included, and the
/// 64-token limit of SPEC §3.2.
final class ConnectionTokensTests: XCTestCase {
    private func tokens(_ values: [String]) -> ConnectionTokens {
        var parsed = ConnectionTokens()
        for value in values { parsed.add(value) }
        return parsed
    }

    private func contains(_ parsed: ConnectionTokens, _ name: String) -> Bool {
        name.withCString { parsed.contains($0) }
    }

    func testListedNamesMatchIgnoringCaseAndWhitespace() {
        let parsed = tokens([" X-Foo ,\tx-bar\t", "BAZ"])
        XCTAssertEqual(parsed.count, 3)
        for name in ["x-foo", "X-FOO", "X-Bar", "baz"] { XCTAssertTrue(contains(parsed, name), name) }
        for name in ["x-fo", "x-fooo", "x-baz", "bar", "", "x_foo"] { XCTAssertFalse(contains(parsed, name), name) }
    }

    func testUsualValuesKeepNothingToLookUp() {
        let parsed = tokens(["keep-alive", "Close"])
        XCTAssertEqual(parsed.count, 2)
        XCTAssertFalse(contains(parsed, "close"))
        XCTAssertFalse(contains(parsed, "host"))
    }

    func testEmptyElementsAndBlankValuesCountNothing() {
        let parsed = tokens(["", ",,,", " , \t ,", ","])
        XCTAssertEqual(parsed.count, 0)
        XCTAssertFalse(parsed.tooMany)
        XCTAssertFalse(contains(parsed, ""))
    }

    func testSixtyFourTokensAcrossLinesAreAllowedAndSixtyFiveAreTooMany() {
        let names = (0..<65).map { "h\($0)" }
        let sixtyFour = tokens([names[0..<30].joined(separator: ","), names[30..<64].joined(separator: ", ")])
        XCTAssertEqual(sixtyFour.count, 64)
        XCTAssertFalse(sixtyFour.tooMany)
        XCTAssertTrue(contains(sixtyFour, "H63"))
        let sixtyFive = tokens([names[0..<30].joined(separator: ","), names[30..<65].joined(separator: ",")])
        XCTAssertTrue(sixtyFive.tooMany)
        XCTAssertTrue(contains(sixtyFive, "h0"))
        XCTAssertFalse(contains(sixtyFive, "h64"), "only the first 64 are kept")
    }

    func testThousandsOfTokensAreCountedWithoutKeepingThem() {
        let parsed = tokens([String(repeating: "a,", count: 4_000) + "b"])
        XCTAssertEqual(parsed.count, 4_001)
        XCTAssertTrue(parsed.tooMany)
    }

    func testHostileBytesStayInsideTheirToken() {
        // Control bytes, quotes, NUL-free non-ASCII and a very long token: compared as they are.
        let long = String(repeating: "x", count: 10_000)
        let parsed = tokens(["\u{0B}x-a\u{0B}, \"x-b\", x-ç, \(long), x-c;q=1"])
        XCTAssertEqual(parsed.count, 5)
        XCTAssertFalse(contains(parsed, "x-a"))
        XCTAssertTrue(contains(parsed, "\u{0B}x-a\u{0B}"))
        XCTAssertFalse(contains(parsed, "x-b"))
        XCTAssertTrue(contains(parsed, "x-ç"))
        XCTAssertTrue(contains(parsed, long))
        XCTAssertFalse(contains(parsed, String(repeating: "x", count: 9_999)))
        XCTAssertFalse(contains(parsed, "x-c"))
    }

    func testNamesOfTheSameLengthAreToldApart() {
        let parsed = tokens(["aa, ab, ba"])
        XCTAssertTrue(contains(parsed, "AB"))
        XCTAssertFalse(contains(parsed, "bb"))
        XCTAssertFalse(contains(parsed, "a"))
    }
}

/// The default per-worker connection limit of SPEC §3.2.
final class ConnectionLimitTests: XCTestCase {
    func testConfiguredLimitWins() {
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 3, openFiles: 64, workers: 2), 3)
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 5_000_000, openFiles: 64, workers: 2), ConnectionLimit.maximum)
    }

    func testDerivedFromTheOpenFileLimit() {
        // (1,048,576 − (64 + 8 × 4)) / 4 / 2
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 0, openFiles: 1_048_576, workers: 4), 131_060)
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 0, openFiles: 65_536, workers: 1), 32_732)
    }

    func testTinyOrOddLimitsStillGiveAFloor() {
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 0, openFiles: 64, workers: 2), ConnectionLimit.derivedMinimum)
        XCTAssertEqual(ConnectionLimit.perWorker(configured: 0, openFiles: 0, workers: 0), ConnectionLimit.derivedMinimum)
        XCTAssertEqual(ConnectionLimit.perWorker(configured: -1, openFiles: Int.max, workers: 1), ConnectionLimit.maximum)
    }
}
