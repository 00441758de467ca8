import XCTest
@testable import GatehouseConfig

/// SPEC §3.2 Config files: anchors, aliases, merge keys, complex keys and deep nesting are
/// refused before Yams composes anything; what only looks like them (in quotes, comments,
/// block scalars, inside plain scalars) is not.
final class YAMLGuardTests: XCTestCase {
    private func refused(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> YAMLGuard.Problem? {
        YAMLGuard.problem(in: yaml)
    }

    func testAnchorsAliasesAndMergeKeysAreRefusedAtTheirPosition() {
        let cases: [(description: String, yaml: String, line: Int, column: Int, says: String)] = [
            ("anchor on a scalar", "a: &x 1\nb: 2\n", 1, 4, "&x"),
            ("anchor on a mapping", "base: &b\n  k: v\n", 1, 7, "&b"),
            ("anchor on a flow sequence", "l: &s [1, 2]\n", 1, 4, "&s"),
            ("anchor on a list item", "l:\n  - &i x\n", 2, 5, "&i"),
            ("merge key, plain", "a:\n  <<: {k: v}\n", 2, 3, "merge key"),
            ("merge key in a flow mapping", "a: {<<: {k: v}, b: 1}\n", 1, 5, "merge key"),
            ("merge key, quoted", "a:\n  \"<<\": {k: v}\n", 2, 3, "merge key"),
            ("merge key, single-quoted", "a:\n  '<<': {k: v}\n", 2, 3, "merge key"),
            ("merge tag on a value", "a: !!merge x\n", 1, 4, "merge key"),
            ("mapping as a key", "? {a: 1}\n: v\n", 1, 3, "single value"),
            ("list as a key", "? [a]\n: v\n", 1, 3, "single value"),
            ("flow key that is a list", "{[a]: 1}\n", 1, 2, "single value"),
            ("anchor right after a block scalar", "a: |\n  &not *these\nb: &x 1\n", 3, 4, "&x"),
            ("anchor after a quoted lookalike", "a: [\"&y\", '*z', &x 1]\n", 1, 17, "&x"),
            ("alias after a comment lookalike", "a: 1 # &y\nb: *x\n", 2, 4, "*x"),
            ("anchor on a document", "--- &d\na: 1\n", 1, 5, "&d"),
            ("anchor in a second document", "a: 1\n---\nb: &x 2\n", 3, 4, "&x"),
        ]
        for testCase in cases {
            guard let problem = refused(testCase.yaml) else {
                XCTFail("\(testCase.description): not refused")
                continue
            }
            XCTAssertEqual(problem.line, testCase.line, testCase.description)
            XCTAssertEqual(problem.column, testCase.column, testCase.description)
            XCTAssertTrue(problem.message.contains(testCase.says), "\(testCase.description): \(problem.message)")
        }
    }

    func testAnAliasIsRefusedEvenWithoutAnAnchor() {
        // Yams would call it undefined; the guard names what it is.
        let problem = refused("a: *nothing\n")
        XCTAssertEqual(problem?.line, 1)
        XCTAssertEqual(problem?.column, 4)
        XCTAssertTrue(problem?.message.contains("*nothing") ?? false, problem?.message ?? "")
    }

    func testLookalikesInQuotesCommentsBlockScalarsAndPlainScalarsPass() {
        let cases: [(description: String, yaml: String)] = [
            ("double-quoted", "a: \"&x *y <<\"\n"),
            ("single-quoted", "a: '&x *y << a: *b'\n"),
            ("comment", "a: 1 # &x *y <<: z\n# <<: *all\n"),
            ("literal block scalar", "a: |\n  &anchor *alias\n  <<: *x\nb: 2\n"),
            ("folded block scalar", "a: >\n  - &x\n  - *y\n"),
            ("inside a plain scalar", "path: /docs/**\nb: a&b\nc: x*y\nd: a << b\n"),
            ("glob in a flow list, quoted", "paths: [\"/**\", \"/a/*\"]\n"),
            ("email and ampersands in a URL", "u: https://x.test/?a=1&b=2\n"),
            ("<< as a value", "a: <<\n"),
            ("<< inside a longer key", "a<<: 1\n"),
            ("multi-line quoted with lookalikes", "a: \"first\n  &x *y\n  <<\"\n"),
            ("empty document", ""),
            ("only a comment", "# &x\n"),
        ]
        for testCase in cases {
            XCTAssertNil(refused(testCase.yaml), testCase.description)
        }
    }

    func testNestingDeeperThanTheLimitIsRefused() {
        let depth = YAMLGuard.maxDepth
        XCTAssertNil(refused(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)))
        let deep = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        XCTAssertEqual(refused(deep)?.column, depth + 1)
        XCTAssertTrue(refused(deep)?.message.contains("nested") ?? false)
        // libyaml's own limit (1,000) is far above: this is the guard's refusal, not a syntax error.
        let blockDeep = (0...depth).map { String(repeating: "  ", count: $0) + "k:" }.joined(separator: "\n") + " v\n"
        XCTAssertNotNil(refused(blockDeep))
    }

    /// The bombs of issue 9: refused at their first anchor, in time linear in their length.
    func testBillionLaughsAndMergeBombsAreRefusedAtTheFirstAnchor() {
        var laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            laughs += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        XCTAssertEqual(refused(laughs)?.line, 1)
        var merges = "a0: &a0 {k: v}\n"
        for index in 1...20 { merges += "a\(index): &a\(index) {<<: [*a\(index - 1), *a\(index - 1)], k\(index): v}\n" }
        XCTAssertEqual(refused(merges)?.line, 1)
        var keys = "k0: &k0 [x, y]\n"
        for index in 1...20 { keys += "k\(index): &k\(index) {? *k\(index - 1) : 1, ? [*k\(index - 1)] : 2}\n" }
        XCTAssertEqual(refused(keys)?.line, 1)
    }

    func testHostileTextNeverCrashesTheGuard() {
        let inputs = ["\u{0}", "&", "*", "<<", "? ", "[", "{", "]]]", "a: &", "a: *", "- &\n- *", "\u{FEFF}a: 1",
                      "a: \"\\x", "%YAML 1.1\n---\na: &x 1", "--- &x\n", "!!merge", String(repeating: "&x ", count: 1000)]
        for input in inputs { _ = refused(input) }
    }

    func testAnchorNamesInMessagesAreCut() {
        let name = String(repeating: "n", count: 5000)
        let message = refused("a: &\(name) 1\n")?.message ?? ""
        XCTAssertLessThan(message.count, 300, message)
    }
}
