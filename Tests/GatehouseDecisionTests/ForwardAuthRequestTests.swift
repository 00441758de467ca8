import XCTest
import GatehouseConfig
import GatehouseCore
import GatehousePolicy
@testable import GatehouseDecision

/// ``ForwardAuthRequest`` as tables: which decision requests are the endpoint, and what each
/// style reads from them — including the hostile forms (the other convention's headers, a
/// header missing, repeated, empty or malformed, path tricks the policy would change).
final class ForwardAuthRequestTests: XCTestCase {
    static let forwarded = ForwardAuthSettings(style: .forwarded)
    static let original = ForwardAuthSettings(style: .original)
    static let envoy = ForwardAuthSettings(style: .envoy)

    static let forwardedHeaders = [("X-Forwarded-Method", "POST"), ("X-Forwarded-Uri", "/api/x?a=1"),
                                   ("X-Forwarded-Host", "api.example.com"), ("X-Forwarded-Proto", "https")]
    static let originalHeaders = [("X-Original-Method", "DELETE"), ("X-Original-URI", "/api/y?b=2"),
                                  ("X-Forwarded-Host", "api.example.com:8443")]

    func testWhichTargetsAreTheEndpoint() {
        let rows: [(String, ForwardAuthSettings, Bool)] = [
            ("/_gatehouse/auth", Self.forwarded, true),
            ("/_gatehouse/auth?uri=/x&y", Self.forwarded, true),  // Caddy 2.6 appends the original query
            ("/_gatehouse/auth?", Self.original, true),
            ("/_gatehouse/auth/", Self.forwarded, false),
            ("/_gatehouse/auth/api/x", Self.original, false),
            ("/_gatehouse/authz", Self.forwarded, false),
            ("/_gatehouse/aut", Self.forwarded, false),
            ("/_gatehouse/Auth", Self.forwarded, false),
            ("//_gatehouse/auth", Self.forwarded, false),
            ("/_gatehouse/./auth", Self.forwarded, false),
            ("/_gatehouse/%61uth", Self.forwarded, false),
            ("http://h/_gatehouse/auth", Self.forwarded, false),
            ("", Self.forwarded, false),
            ("/_gatehouse/auth/api/x?q=1", Self.envoy, true),
            ("/_gatehouse/auth", Self.envoy, true),
            ("/_gatehouse/auth?q", Self.envoy, true),
            ("/_gatehouse/authz/api", Self.envoy, false),
            ("/api/_gatehouse/auth", Self.envoy, false),
        ]
        for (target, settings, expected) in rows {
            XCTAssertEqual(ForwardAuthRequest.isEndpoint(target, settings: settings), expected, "\(settings.style) \(target)")
        }
    }

    typealias Outcome = Result<DescribedRequest, Reason>

    static func describe(_ settings: ForwardAuthSettings, method: String = "GET", target: String = "/_gatehouse/auth",
                         _ headers: [(String, String)]) -> Outcome {
        ForwardAuthRequest.describe(method: method, rawTarget: target, headers: HeaderPairs(headers), settings: settings)
    }

    func testEachStyleReadsItsOwnHeaders() {
        XCTAssertEqual(try Self.describe(Self.forwarded, Self.forwardedHeaders).get(),
                       DescribedRequest(method: "POST", target: "/api/x?a=1", host: "api.example.com"))
        XCTAssertEqual(try Self.describe(Self.original, Self.originalHeaders).get(),
                       DescribedRequest(method: "DELETE", target: "/api/y?b=2", host: "api.example.com:8443"))
        // Envoy: the suffix of the path prefix, the request's own method and Host.
        XCTAssertEqual(try Self.describe(Self.envoy, method: "PATCH", target: "/_gatehouse/auth/api/z?c=3",
                                         [("Host", "api.example.com")]).get(),
                       DescribedRequest(method: "PATCH", target: "/api/z?c=3", host: "api.example.com"))
        // Header names are case-insensitive.
        XCTAssertEqual(try Self.describe(Self.original, Self.originalHeaders.map { ($0.0.uppercased(), $0.1) }).get().method,
                       "DELETE")
    }

    func testTheOtherConventionNeverDecides() {
        // A client-injected header of another style is ignored: the chosen style's is missing.
        XCTAssertEqual(Self.describe(Self.forwarded, Self.originalHeaders), .failure(.forwardAuthIncomplete))
        XCTAssertEqual(Self.describe(Self.original, Self.forwardedHeaders.filter { $0.0 != "X-Forwarded-Host" }),
                       .failure(.forwardAuthIncomplete))
        // Both present: only the chosen style's count.
        let both = Self.forwardedHeaders + [("X-Original-Method", "GET"), ("X-Original-URI", "/public/x")]
        XCTAssertEqual(try Self.describe(Self.forwarded, both).get().target, "/api/x?a=1")
        XCTAssertEqual(try Self.describe(Self.original, Self.originalHeaders + [("X-Forwarded-Uri", "/public/x"),
                                                                                  ("X-Forwarded-Method", "GET")]).get(),
                       DescribedRequest(method: "DELETE", target: "/api/y?b=2", host: "api.example.com:8443"))
        // Envoy reads no X-* description at all.
        XCTAssertEqual(try Self.describe(Self.envoy, method: "GET", target: "/_gatehouse/auth/api/x",
                                         Self.forwardedHeaders + [("Host", "h")]).get(),
                       DescribedRequest(method: "GET", target: "/api/x", host: "h"))
    }

    func testAMissingRepeatedOrMalformedHeaderIsIncomplete() {
        var cases: [(String, ForwardAuthSettings, [(String, String)])] = []
        for name in Self.forwardedHeaders.map(\.0) {
            cases.append(("forwarded without \(name)", Self.forwarded, Self.forwardedHeaders.filter { $0.0 != name }))
            cases.append(("forwarded with \(name) twice", Self.forwarded,
                          Self.forwardedHeaders + Self.forwardedHeaders.filter { $0.0 == name }))
            cases.append(("forwarded with \(name) empty", Self.forwarded,
                          Self.forwardedHeaders.map { $0.0 == name ? ($0.0, "") : $0 }))
        }
        for name in Self.originalHeaders.map(\.0) {
            cases.append(("original without \(name)", Self.original, Self.originalHeaders.filter { $0.0 != name }))
            cases.append(("original with \(name) twice (a client's copy appended to)", Self.original,
                          Self.originalHeaders + [(name.lowercased(), "/public/x")]))
        }
        func with(_ name: String, _ value: String, _ base: [(String, String)] = ForwardAuthRequestTests.forwardedHeaders) -> [(String, String)] {
            base.map { $0.0 == name ? ($0.0, value) : $0 }
        }
        let hostile: [(String, String)] = [
            ("X-Forwarded-Method", "GE T"), ("X-Forwarded-Method", "GET\t"), ("X-Forwarded-Method", "G(ET"),
            ("X-Forwarded-Method", String(repeating: "A", count: 33)), ("X-Forwarded-Method", "GÉT"),
            ("X-Forwarded-Uri", "api/x"), ("X-Forwarded-Uri", "http://evil/api/x"), ("X-Forwarded-Uri", "*"),
            ("X-Forwarded-Uri", "/api/x y"), ("X-Forwarded-Uri", "/api/\u{7F}"), ("X-Forwarded-Uri", "?a=1"),
            ("X-Forwarded-Host", "a b"), ("X-Forwarded-Host", "evil/x"), ("X-Forwarded-Host", "u@h"),
            ("X-Forwarded-Host", String(repeating: "h", count: 256)), ("X-Forwarded-Host", "h\u{1}"),
            ("X-Forwarded-Proto", "ftp"), ("X-Forwarded-Proto", "https,http"),
        ]
        for (name, value) in hostile { cases.append(("\(name): \(value.debugDescription)", Self.forwarded, with(name, value))) }
        for (name, settings, headers) in cases {
            XCTAssertEqual(Self.describe(settings, headers), .failure(.forwardAuthIncomplete), name)
        }
        XCTAssertNoThrow(try Self.describe(Self.forwarded, with("X-Forwarded-Proto", "WSS")).get())
        // Envoy: nothing after the prefix, a query right after it, no Host, two Hosts, a bad method.
        for (method, target, headers) in [("GET", "/_gatehouse/auth", [("Host", "h")]),
                                          ("GET", "/_gatehouse/auth?x=1", [("Host", "h")]),
                                          ("GET", "/_gatehouse/auth/x", []),
                                          ("GET", "/_gatehouse/auth/x", [("Host", "h"), ("Host", "i")]),
                                          ("UNKNOWN METHOD", "/_gatehouse/auth/x", [("Host", "h")])] {
            XCTAssertEqual(Self.describe(Self.envoy, method: method, target: target, headers), .failure(.forwardAuthIncomplete),
                           "envoy \(method) \(target) \(headers)")
        }
    }

    /// A described path the path policy refuses or would change is refused (SPEC §11): the
    /// gateway cannot know which form the front proxy forwards.
    func testDescribedPathsThatNormalizationWouldChangeAreRefused() {
        let refused = ["/api/%2e%2e/admin", "/api/../admin", "/api/./x", "//api/x", "/api//x", "/api/x;a=1", "/api/%2Fx",
                       "/api/%25x", "/api/%41", "/api/%7e", "/../x", "/api/\\x", "/api/x%00", "/api/%c0%ae"]
        for target in refused {
            XCTAssertNil(ForwardAuthRequest.normalize(DescribedRequest(method: "GET", target: target, host: "h"), policy: .strict),
                         target)
        }
        let kept = ["/api/x", "/api/x/", "/api/x?a=../b&c=%2F", "/api/%C3%A9", "/", "/api/x?"]
        for target in kept {
            let normalized = ForwardAuthRequest.normalize(DescribedRequest(method: "GET", target: target, host: "h"),
                                                          policy: .strict)
            XCTAssertNotNil(normalized, target)
        }
        XCTAssertEqual(ForwardAuthRequest.normalize(DescribedRequest(method: "GET", target: "/api/x?a=../b", host: "h"),
                                                    policy: .strict),
                       NormalizedTarget(path: "/api/x", query: "a=../b", authority: nil))
        // lenient keeps `;` and `%25` as they are: then they are not a change.
        XCTAssertNotNil(ForwardAuthRequest.normalize(DescribedRequest(method: "GET", target: "/api/x;a=1", host: "h"),
                                                     policy: .lenient))
        XCTAssertNil(ForwardAuthRequest.normalize(DescribedRequest(method: "GET", target: "/api/%2e%2e/x", host: "h"),
                                                  policy: .lenient))
    }
}
