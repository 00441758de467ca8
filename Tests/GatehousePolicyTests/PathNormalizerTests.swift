import XCTest
import GatehousePolicy

/// SPEC §4.1. Each case: what it shows, the raw request target, and the expected normalized
/// path (nil = refused with 400). Cases run under both policies unless a policy is named.
final class PathNormalizerTests: XCTestCase {
    struct Case {
        var description: String
        var target: String
        var expected: String?
        var policies: [PathPolicy] = PathPolicy.allCases
    }

    private func check(_ cases: [Case], file: StaticString = #filePath, line: UInt = #line) {
        for testCase in cases {
            for policy in testCase.policies {
                let result = PathNormalizer.normalize(target: testCase.target, policy: policy)
                XCTAssertEqual(result?.path, testCase.expected,
                               "\(testCase.description) — \(policy) \(testCase.target.debugDescription)",
                               file: file, line: line)
            }
        }
    }

    func testNormalPathsPassUnchanged() {
        check([
            Case(description: "root", target: "/", expected: "/"),
            Case(description: "plain path", target: "/api/v1/users", expected: "/api/v1/users"),
            Case(description: "trailing slash kept", target: "/a/", expected: "/a/"),
            Case(description: "dots inside names are not dot segments", target: "/a/.well-known/x..y/...", expected: "/a/.well-known/x..y/..."),
            Case(description: "sub-delims and colon allowed", target: "/a:b/c@d/e!$&'()*+,=", expected: "/a:b/c@d/e!$&'()*+,="),
        ])
    }

    func testEncodedUnreservedCharactersAreDecoded() {
        check([
            Case(description: "%41 is A", target: "/%41bc", expected: "/Abc"),
            Case(description: "lower-case hex digits decode too", target: "/%61%2d%5f%7e", expected: "/a-_~"),
            Case(description: "%2e inside a name", target: "/a%2ejson", expected: "/a.json"),
            Case(description: "%30 is a digit", target: "/v%31", expected: "/v1"),
        ])
    }

    func testRemainingEscapesAreUpperCased() {
        check([
            Case(description: "%3a upper-cased", target: "/a%3ab", expected: "/a%3Ab"),
            Case(description: "encoded space kept", target: "/a%20b", expected: "/a%20b"),
            Case(description: "UTF-8 escapes upper-cased", target: "/caf%c3%a9", expected: "/caf%C3%A9"),
            Case(description: "encoded ? and # stay encoded", target: "/a%3fb%23c", expected: "/a%3Fb%23c"),
            Case(description: "encoded ; stays encoded (not a parameter)", target: "/a%3bb", expected: "/a%3Bb"),
        ])
    }

    func testEncodedDotDotIsResolved() {
        check([
            Case(description: "%2e%2e removes the previous segment", target: "/a/b/%2e%2e/c", expected: "/a/c"),
            Case(description: "mixed-case %2E%2e/ removes the previous segment", target: "/a/b/%2E%2e/c", expected: "/a/c"),
            Case(description: ".%2e is ..", target: "/a/b/.%2e/c", expected: "/a/c"),
            Case(description: "%2e is .", target: "/a/%2e/b", expected: "/a/b"),
            Case(description: "trailing %2E%2e/ leaves a trailing slash", target: "/a/b/%2E%2e/", expected: "/a/"),
        ])
    }

    func testDotSegmentsAreResolved() {
        check([
            Case(description: ". removed", target: "/a/./b", expected: "/a/b"),
            Case(description: ".. removes the previous segment", target: "/a/b/../c", expected: "/a/c"),
            Case(description: "final . keeps a trailing slash", target: "/a/.", expected: "/a/"),
            Case(description: "final .. keeps a trailing slash", target: "/a/b/..", expected: "/a/"),
            Case(description: "back to root", target: "/a/..", expected: "/"),
            Case(description: "only .", target: "/.", expected: "/"),
            Case(description: "./ at root", target: "/./", expected: "/"),
            Case(description: "several in a row", target: "/a/b/c/../../d", expected: "/a/d"),
        ])
    }

    func testRepeatedSlashesAreMerged() {
        check([
            Case(description: "// at the start", target: "//a", expected: "/a"),
            Case(description: "many slashes", target: "//a///b", expected: "/a/b"),
            Case(description: "only slashes", target: "//", expected: "/"),
            Case(description: "trailing //", target: "/a//", expected: "/a/"),
            Case(description: "dot segments resolve before merging (RFC 3986 order)", target: "/a//../b", expected: "/a/b"),
        ])
    }

    func testClimbingAboveRootIsRefused() {
        check([
            Case(description: "/.. at root", target: "/..", expected: nil),
            Case(description: "/../x", target: "/../x", expected: nil),
            Case(description: "two up from one down", target: "/a/../../x", expected: nil),
            Case(description: "via %2e%2e", target: "/%2e%2e/x", expected: nil),
            Case(description: "via %2E%2e/ after a segment", target: "/a/%2E%2e/%2e%2e/", expected: nil),
            Case(description: "via mixed . and %2e", target: "/a/.%2E/..", expected: nil),
        ])
    }

    func testEncodedSlashAndBackslashAreRefused() {
        check([
            Case(description: "%2F", target: "/a%2Fb", expected: nil),
            Case(description: "%2f", target: "/a%2fb", expected: nil),
            Case(description: "%5C", target: "/a%5Cb", expected: nil),
            Case(description: "%5c", target: "/a%5cb", expected: nil),
            Case(description: "raw backslash", target: "/a\\b", expected: nil),
            Case(description: "raw backslash dot dot", target: "/a/..\\..\\x", expected: nil),
        ])
    }

    func testSemicolonIsRefusedWhenStrictAndKeptWhenLenient() {
        check([
            Case(description: "strict refuses ;", target: "/a;b", expected: nil, policies: [.strict]),
            Case(description: "strict refuses ; parameters", target: "/a/b;jsessionid=1", expected: nil, policies: [.strict]),
            Case(description: "lenient keeps ;", target: "/a;b", expected: "/a;b", policies: [.lenient]),
            Case(description: "lenient keeps ; and normalizes the rest", target: "//a;x=1/./b", expected: "/a;x=1/b", policies: [.lenient]),
            Case(description: "lenient refuses ..; (resolved as .. by Tomcat)", target: "/a/..;/b", expected: nil, policies: [.lenient]),
            Case(description: "lenient refuses .; ", target: "/a/.;x/b", expected: nil, policies: [.lenient]),
            Case(description: "lenient refuses %2e%2e;", target: "/a/%2e%2e;/b", expected: nil, policies: [.lenient]),
        ])
    }

    func testEncodedPercentIsRefusedWhenStrictAndKeptWhenLenient() {
        check([
            Case(description: "strict refuses %25", target: "/a%25b", expected: nil, policies: [.strict]),
            Case(description: "strict refuses double-encoded slash", target: "/a%252Fb", expected: nil, policies: [.strict]),
            Case(description: "lenient keeps %25 as is", target: "/a%25b", expected: "/a%25b", policies: [.lenient]),
            Case(description: "lenient keeps double-encoded dots as they are", target: "/a/%252e%252e/b", expected: "/a/%252e%252e/b", policies: [.lenient]),
        ])
    }

    func testControlCharactersAreRefused() {
        check([
            Case(description: "%00", target: "/a%00b", expected: nil),
            Case(description: "%1f", target: "/a%1fb", expected: nil),
            Case(description: "%0A", target: "/a%0Ab", expected: nil),
            Case(description: "%7F", target: "/a%7Fb", expected: nil),
            Case(description: "raw NUL", target: "/a\u{0}b", expected: nil),
            Case(description: "raw tab", target: "/a\tb", expected: nil),
            Case(description: "raw CR LF", target: "/a\r\nX: y", expected: nil),
            Case(description: "raw DEL", target: "/a\u{7F}", expected: nil),
        ])
    }

    func testMalformedEscapesAreRefused() {
        check([
            Case(description: "lone %", target: "/a%", expected: nil),
            Case(description: "% then one digit at the end", target: "/a%4", expected: nil),
            Case(description: "non-hex digit", target: "/a%G1", expected: nil),
            Case(description: "second digit not hex", target: "/a%4zb", expected: nil),
            Case(description: "% before a slash", target: "/a%/b", expected: nil),
        ])
    }

    func testRawSpacesAndNonASCIIBytesAreRefused() {
        check([
            Case(description: "space", target: "/a b", expected: nil),
            Case(description: "unicode é", target: "/café", expected: nil),
            Case(description: "unicode in an otherwise normal path", target: "/a/ü/b", expected: nil),
            Case(description: "raw # (fragment)", target: "/a#b", expected: nil),
        ])
    }

    func testTargetsNotStartingWithSlashAreRefused() {
        check([
            Case(description: "asterisk-form", target: "*", expected: nil),
            Case(description: "empty", target: "", expected: nil),
            Case(description: "? only", target: "?", expected: nil),
            Case(description: "relative", target: "a/b", expected: nil),
            Case(description: "authority-form", target: "example.com:443", expected: nil),
            Case(description: "other scheme", target: "ftp://host/x", expected: nil),
            Case(description: "scheme without //", target: "http:/x", expected: nil),
        ])
    }

    func testQueryIsPassedThroughUnchanged() {
        let cases: [(description: String, target: String, path: String, query: String?)] = [
            ("no ?", "/a", "/a", nil),
            ("? only gives an empty query", "/?", "/", ""),
            ("query with escapes and dots untouched", "/a/../b?x=%2e%2e&y=%2F;z", "/b", "x=%2e%2e&y=%2F;z"),
            ("everything after the first ?", "/a?b?c", "/a", "b?c"),
            ("%3F in the path is not a query", "/a%3fb", "/a%3Fb", nil),
            ("non-ASCII in the query is passed", "/a?q=é", "/a", "q=é"),
        ]
        for policy in PathPolicy.allCases {
            for testCase in cases {
                let result = PathNormalizer.normalize(target: testCase.target, policy: policy)
                XCTAssertEqual(result, NormalizedTarget(path: testCase.path, query: testCase.query, authority: nil),
                               "\(testCase.description) — \(policy)")
            }
        }
    }

    func testControlCharactersInTheQueryAreRefused() {
        XCTAssertNil(PathNormalizer.normalize(target: "/a?x=\r\nHost: evil", policy: .strict))
        XCTAssertNil(PathNormalizer.normalize(target: "/a?x=1 y", policy: .lenient))
    }

    func testAbsoluteFormIsReducedToPathAndQuery() {
        let cases: [(description: String, target: String, expected: NormalizedTarget?)] = [
            ("http with port and query", "http://host:8080/p?q",
             NormalizedTarget(path: "/p", query: "q", authority: "host:8080")),
            ("https without query", "https://api.example.com/a/b",
             NormalizedTarget(path: "/a/b", query: nil, authority: "api.example.com")),
            ("scheme is case-insensitive", "HTTP://Host/x",
             NormalizedTarget(path: "/x", query: nil, authority: "Host")),
            ("empty path is /", "http://host",
             NormalizedTarget(path: "/", query: nil, authority: "host")),
            ("empty path with query", "http://host?x=1",
             NormalizedTarget(path: "/", query: "x=1", authority: "host")),
            ("path is normalized", "http://host//a/%2e%2e/b",
             NormalizedTarget(path: "/b", query: nil, authority: "host")),
            ("IPv6 literal", "http://[::1]:8080/x",
             NormalizedTarget(path: "/x", query: nil, authority: "[::1]:8080")),
            ("path policy applies", "http://host/a%2Fb", nil),
            ("climbing refused", "http://host/../x", nil),
            ("empty authority refused", "http:///x", nil),
            ("userinfo refused", "http://user@host/x", nil),
            ("space in authority refused", "http://ho st/x", nil),
        ]
        for testCase in cases {
            XCTAssertEqual(PathNormalizer.normalize(target: testCase.target, policy: .strict), testCase.expected,
                           testCase.description)
        }
    }

    // MARK: escaped bytes that are not UTF-8 (SPEC §3.2)

    func testValidUTF8EscapesOfEveryLengthPassInBothPolicies() {
        check([
            Case(description: "2 bytes: é", target: "/caf%C3%A9", expected: "/caf%C3%A9"),
            Case(description: "smallest 2-byte form U+0080", target: "/%C2%80", expected: "/%C2%80"),
            Case(description: "3 bytes: € U+20AC", target: "/%E2%82%AC", expected: "/%E2%82%AC"),
            Case(description: "smallest 3-byte form U+0800", target: "/%E0%A0%80", expected: "/%E0%A0%80"),
            Case(description: "last before the surrogates U+D7FF", target: "/%ED%9F%BF", expected: "/%ED%9F%BF"),
            Case(description: "first after the surrogates U+E000", target: "/%EE%80%80", expected: "/%EE%80%80"),
            Case(description: "U+FFFF", target: "/%EF%BF%BF", expected: "/%EF%BF%BF"),
            Case(description: "4 bytes: U+1F600", target: "/%F0%9F%98%80", expected: "/%F0%9F%98%80"),
            Case(description: "smallest 4-byte form U+10000", target: "/%F0%90%80%80", expected: "/%F0%90%80%80"),
            Case(description: "largest code point U+10FFFF", target: "/%F4%8F%BF%BF", expected: "/%F4%8F%BF%BF"),
            Case(description: "lower-case hex", target: "/%c3%a9/x", expected: "/%C3%A9/x"),
            Case(description: "two sequences back to back", target: "/%C3%A9%E2%82%AC", expected: "/%C3%A9%E2%82%AC"),
            Case(description: "a sequence then an ASCII escape", target: "/%C3%A9%41", expected: "/%C3%A9A"),
            Case(description: "a sequence then a raw byte", target: "/%C3%A9b", expected: "/%C3%A9b"),
        ])
    }

    func testOverlongFormsAreRefusedWhenStrict() {
        let overlongs = [
            ("%C0%AE%C0%AE: overlong `..`", "/%C0%AE%C0%AE/etc/passwd"),
            ("%C0%AE: overlong `.`", "/a/%C0%AE/b"),
            ("%C0%AF: overlong `/`", "/a%C0%AFb"),
            ("%C1%9C: overlong `\\`", "/a%C1%9Cb"),
            ("%C0%80: overlong NUL", "/a%C0%80"),
            ("%E0%80%AE: 3-byte overlong `.`", "/%E0%80%AE%E0%80%AE/x"),
            ("%E0%9F%BF: 3-byte overlong below U+0800", "/%E0%9F%BF"),
            ("%F0%80%80%AF: 4-byte overlong `/`", "/a%F0%80%80%AFb"),
            ("%F0%8F%BF%BF: 4-byte overlong below U+10000", "/%F0%8F%BF%BF"),
        ]
        check(overlongs.map { Case(description: $0.0, target: $0.1, expected: nil, policies: [.strict]) })
    }

    func testSurrogatesAndCodePointsAboveTheLastAreRefusedWhenStrict() {
        let cases = [
            ("high surrogate U+D800", "/%ED%A0%80"),
            ("low surrogate U+DFFF", "/%ED%BF%BF"),
            ("CESU-8 pair", "/%ED%A0%BD%ED%B8%80"),
            ("U+110000", "/%F4%90%80%80"),
            ("F5 lead", "/%F5%80%80%80"),
            ("FF", "/%FF"),
            ("FE", "/%FE%FF"),
        ]
        check(cases.map { Case(description: $0.0, target: $0.1, expected: nil, policies: [.strict]) })
    }

    func testTruncatedAndStrayBytesAreRefusedWhenStrict() {
        let cases = [
            ("lead at the end", "/a%C3"),
            ("lead before a slash", "/a%C3/b"),
            ("lead then a raw byte", "/a%C3b"),
            ("lead then an ASCII escape", "/a%C3%41"),
            ("3-byte lead with one continuation", "/%E2%82"),
            ("4-byte lead with two continuations then a slash", "/%F0%9F%98/x"),
            ("stray continuation", "/%80"),
            ("continuation after a complete sequence", "/%C3%A9%A9"),
            ("two leads", "/%C3%C3%A9"),
            ("lead then a dot segment", "/a%C3/../b"),
            ("lead before the query", "/a%C3?x=1"),
        ]
        check(cases.map { Case(description: $0.0, target: $0.1, expected: nil, policies: [.strict]) })
    }

    func testLenientKeepsNonUTF8EscapesAsTheyCame() {
        check([
            Case(description: "Latin-1 é", target: "/caf%E9", expected: "/caf%E9", policies: [.lenient]),
            Case(description: "overlong stays encoded, never a dot segment", target: "/a/%c0%ae%c0%ae/b",
                 expected: "/a/%C0%AE%C0%AE/b", policies: [.lenient]),
            Case(description: "truncated", target: "/a%C3/b", expected: "/a%C3/b", policies: [.lenient]),
        ])
    }
}
