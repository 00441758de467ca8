import XCTest
import GatehousePolicy

/// SPEC §4.2 path globs. Each case: what it shows, the pattern, the paths it must match and
/// the paths it must not.
final class GlobTests: XCTestCase {
    struct Case {
        var description: String
        var pattern: String
        var matching: [String]
        var notMatching: [String]
    }

    private func check(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) throws {
        for testCase in cases {
            let glob = try Glob(testCase.pattern)
            for path in testCase.matching {
                XCTAssertTrue(glob.matches(path), "\(testCase.description): \(testCase.pattern) should match \(path)",
                              file: file, line: line)
            }
            for path in testCase.notMatching {
                XCTAssertFalse(glob.matches(path), "\(testCase.description): \(testCase.pattern) should not match \(path)",
                               file: file, line: line)
            }
        }
    }

    func testLiteralPatternsMatchExactlyAndCaseSensitively() throws {
        try check([
            Case(description: "literal", pattern: "/health", matching: ["/health"],
                 notMatching: ["/Health", "/health/", "/healthz", "/heal", "/health/x", "/"]),
            Case(description: "root", pattern: "/", matching: ["/"], notMatching: ["/a", ""]),
            Case(description: "trailing slash is part of the literal", pattern: "/a/", matching: ["/a/"],
                 notMatching: ["/a", "/a/b"]),
        ])
    }

    func testSingleStarMatchesWithinOneSegment() throws {
        try check([
            Case(description: "whole segment", pattern: "/users/*", matching: ["/users/1", "/users/abc", "/users/"],
                 notMatching: ["/users", "/users/1/posts", "/usersx/1"]),
            Case(description: "star in the middle", pattern: "/users/*/posts",
                 matching: ["/users/1/posts", "/users/x/posts"],
                 notMatching: ["/users/posts", "/users/1/2/posts", "/users/1/posts/3"]),
            Case(description: "suffix", pattern: "/files/*.json", matching: ["/files/a.json", "/files/.json"],
                 notMatching: ["/files/a.jsonx", "/files/a/b.json", "/files/a.xml"]),
            Case(description: "prefix and suffix", pattern: "/v*-beta", matching: ["/v1-beta", "/v-beta", "/v2.0-beta"],
                 notMatching: ["/v1-beta/x", "/1-beta", "/v1-bet"]),
            Case(description: "several stars in a segment", pattern: "/a*b*c", matching: ["/abc", "/aXbYc", "/abbc", "/acbc"],
                 notMatching: ["/ab", "/acb", "/a/b/c"]),
            Case(description: "overlapping prefix and suffix", pattern: "/ab*ba", matching: ["/abba", "/abxba"],
                 notMatching: ["/aba", "/ab"]),
        ])
    }

    func testDoubleStarMatchesZeroOrMoreSegments() throws {
        try check([
            Case(description: "subtree", pattern: "/a/**", matching: ["/a", "/a/", "/a/b", "/a/b/c", "/a/b/"],
                 notMatching: ["/ab", "/b/a", "/", "/A/b"]),
            Case(description: "everything", pattern: "/**", matching: ["/", "/a", "/a/b/c/", "/x.y"], notMatching: []),
            Case(description: "in the middle", pattern: "/a/**/z", matching: ["/a/z", "/a/b/z", "/a/b/c/z"],
                 notMatching: ["/a", "/a/zz", "/a/z/b", "/z", "/b/a/z"]),
            Case(description: "with a star after it", pattern: "/api/**/*.json",
                 matching: ["/api/x.json", "/api/v1/users/x.json"], notMatching: ["/api/x.xml", "/api", "/other/x.json"]),
            Case(description: "two double stars", pattern: "/**/b/**", matching: ["/b", "/a/b", "/a/b/c", "/x/y/b/z"],
                 notMatching: ["/", "/a", "/a/bb/c"]),
            Case(description: "needs backtracking", pattern: "/**/a/b", matching: ["/a/a/b", "/a/b", "/x/a/a/b"],
                 notMatching: ["/a/b/a", "/a/a/b/c"]),
            Case(description: "deep subtree", pattern: "/a/b/**", matching: ["/a/b", "/a/b/c"], notMatching: ["/a", "/a/bc"]),
        ])
    }

    func testInvalidPatternsAreRefused() {
        let cases: [(description: String, pattern: String)] = [
            ("empty", ""),
            ("does not start with /", "a/**"),
            ("** not a whole segment (suffix)", "/a**"),
            ("** not a whole segment (prefix)", "/**a"),
            ("** inside a segment", "/a/x**y"),
            ("*** is not **", "/a/***"),
            ("empty segment", "/a//b"),
            ("dot segment", "/a/./b"),
            ("dot-dot segment", "/a/../b"),
        ]
        for testCase in cases {
            XCTAssertThrowsError(try Glob(testCase.pattern), testCase.description)
        }
    }

    func testDescriptionIsThePattern() throws {
        XCTAssertEqual(try Glob("/a/**").description, "/a/**")
        XCTAssertEqual(try Glob("/a/*"), try Glob("/a/*"))
    }
}
