import XCTest
import GatehousePolicy

/// `cors.allow_origins` entries against `Origin` header values (SPEC §6).
final class OriginPatternTests: XCTestCase {
    func testOriginsMatchOnSchemeHostAndPort() throws {
        let cases: [(description: String, pattern: String, origin: String, expected: Bool)] = [
            ("same origin", "https://app.example.com", "https://app.example.com", true),
            ("host case ignored", "https://app.example.com", "https://APP.Example.COM", true),
            ("scheme case ignored", "HTTPS://App.Example.com", "https://app.example.com", true),
            ("default https port in the pattern", "https://a.com:443", "https://a.com", true),
            ("default https port in the origin", "https://a.com", "https://a.com:443", true),
            ("default http port", "http://a.com:80", "http://a.com", true),
            ("443 is not the http default", "http://a.com", "http://a.com:443", false),
            ("explicit port equal", "http://localhost:8080", "http://localhost:8080", true),
            ("explicit port differs", "http://localhost:8080", "http://localhost:8081", false),
            ("port missing in the origin", "http://localhost:8080", "http://localhost", false),
            ("other scheme", "https://a.com", "http://a.com", false),
            ("other host", "https://a.com", "https://b.com", false),
            ("a subdomain is another origin", "https://a.com", "https://www.a.com", false),
            ("host suffix is another origin", "https://a.com", "https://a.com.evil.net", false),
            ("trailing slash is not an origin", "https://a.com", "https://a.com/", false),
            ("path is not an origin", "https://a.com", "https://a.com/x", false),
            ("user info is not an origin", "https://a.com", "https://user@a.com", false),
            ("trailing dot is another host", "https://a.com", "https://a.com.", false),
            ("empty header", "https://a.com", "", false),
            ("IPv4 host", "http://127.0.0.1:5000", "http://127.0.0.1:5000", true),
            ("IPv6 host", "http://[::1]:8080", "http://[::1]:8080", true),
            ("IPv6 pattern kept canonical", "http://[0:0::1]:8080", "http://[::1]:8080", true),
            ("non-default scheme, no port", "chrome-extension://abcdef", "chrome-extension://abcdef", true),
            ("null pattern matches null", "null", "null", true),
            ("null pattern matches nothing else", "null", "https://a.com", false),
            ("star matches any origin", "*", "https://anything.example", true),
            ("star does not match null", "*", "null", false),
            ("star does not match garbage", "*", "not an origin", false),
            ("origin pattern does not match null", "https://a.com", "null", false),
        ]
        for testCase in cases {
            let pattern = try OriginPattern(testCase.pattern)
            XCTAssertEqual(pattern.matches(testCase.origin), testCase.expected, testCase.description)
        }
    }

    func testWildcardMatchesOneOrMoreLabelsOnly() throws {
        let cases: [(description: String, pattern: String, origin: String, expected: Bool)] = [
            ("one label", "https://*.example.com", "https://a.example.com", true),
            ("two labels", "https://*.example.com", "https://a.b.example.com", true),
            ("label with digits, hyphen, underscore", "https://*.example.com", "https://a-1_b.example.com", true),
            ("case ignored", "https://*.example.com", "https://A.EXAMPLE.com", true),
            ("default port in the origin", "https://*.example.com", "https://a.example.com:443", true),
            ("the bare domain", "https://*.example.com", "https://example.com", false),
            ("a lookalike domain", "https://*.example.com", "https://evilexample.com", false),
            ("the domain as a prefix", "https://*.example.com", "https://a.example.com.evil.net", false),
            ("empty label", "https://*.example.com", "https://.example.com", false),
            ("doubled dot", "https://*.example.com", "https://a..example.com", false),
            ("other scheme", "https://*.example.com", "http://a.example.com", false),
            ("other port", "https://*.example.com", "https://a.example.com:8443", false),
            ("pattern port", "https://*.example.com:8443", "https://a.example.com:8443", true),
            ("pattern port, origin without", "https://*.example.com:8443", "https://a.example.com", false),
            ("star in the origin", "https://*.example.com", "https://*.example.com", false),
            ("path after a match", "https://*.example.com", "https://a.example.com/", false),
            ("IPv6 host", "https://*.example.com", "https://[::1]", false),
        ]
        for testCase in cases {
            let pattern = try OriginPattern(testCase.pattern)
            XCTAssertEqual(pattern.matches(testCase.origin), testCase.expected, testCase.description)
        }
    }

    func testPatternsAreKeptInCanonicalForm() throws {
        let cases: [(text: String, canonical: String)] = [
            ("HTTPS://App.Example.COM", "https://app.example.com"),
            ("https://a.com:443", "https://a.com"),
            ("http://a.com:80", "http://a.com"),
            ("http://a.com:8080", "http://a.com:8080"),
            ("https://*.Example.com", "https://*.example.com"),
            ("http://[0:0:0:0:0:0:0:1]:80", "http://[::1]"),
            ("*", "*"),
            ("null", "null"),
        ]
        for testCase in cases {
            XCTAssertEqual(try OriginPattern(testCase.text).description, testCase.canonical, testCase.text)
        }
    }

    func testMalformedPatternsAreRefusedNamingTheValue() {
        let cases: [(description: String, text: String, says: String)] = [
            ("trailing slash", "https://a.com/", "path"),
            ("path", "https://a.com/app", "path"),
            ("query", "https://a.com?x", "path"),
            ("fragment", "https://a.com#x", "path"),
            ("no scheme", "a.com", "scheme://host[:port]"),
            ("scheme without slashes", "https:a.com", "scheme://host[:port]"),
            ("empty", "", "scheme://host[:port]"),
            ("bad scheme", "1https://a.com", "scheme"),
            ("empty host", "https://", "empty host"),
            ("empty host with port", "https://:8080", "empty host"),
            ("user info", "https://u@a.com", "user info"),
            ("port zero", "https://a.com:0", "port"),
            ("port too big", "https://a.com:65536", "port"),
            ("port not a number", "https://a.com:https", "port"),
            ("empty port", "https://a.com:", "port"),
            ("space in host", "https://a .com", "host"),
            ("star inside a label", "https://a*.example.com", "leftmost"),
            ("star as a suffix label", "https://a.*.example.com", "leftmost"),
            ("star glued to the domain", "https://*example.com", "leftmost"),
            ("star alone as host", "https://*", "leftmost"),
            ("two stars", "https://*.*.example.com", "leftmost"),
            ("star scheme", "*://a.com", "scheme"),
            ("star port", "https://a.com:*", "port"),
            ("leading dot", "https://.a.com", "empty host label"),
            ("trailing dot", "https://a.com.", "empty host label"),
            ("bracketed IPv4", "http://[127.0.0.1]", "IPv6"),
            ("bracketed garbage", "http://[xyz]", "host"),
            ("NULL in capitals", "NULL", "scheme://host[:port]"),
        ]
        for testCase in cases {
            XCTAssertThrowsError(try OriginPattern(testCase.text), testCase.description) { error in
                let error = error as? CORSConfigError
                XCTAssertEqual(error?.key, "allow_origins", testCase.description)
                XCTAssertTrue(error?.message.contains("\"\(testCase.text)\"") ?? false, "\(testCase.description): \(String(describing: error))")
                XCTAssertTrue(error?.message.contains(testCase.says) ?? false, "\(testCase.description): \(String(describing: error))")
            }
        }
    }
}
