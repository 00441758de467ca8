import XCTest
import GatehouseCore
import GatehousePolicy

/// SPEC §4.2 route matching: first match in order, methods, host; and `check`'s shadowing.
final class RouteTableTests: XCTestCase {
    private func match(_ path: String, methods: Set<String>? = nil, host: String? = nil) -> RouteMatch {
        RouteMatch(path: try! Glob(path), methods: methods, host: host)
    }

    private func route(_ name: String, _ match: RouteMatch) -> Route {
        Route(name: name, match: match, upstream: "api", location: SourceLocation(file: "gatehouse.yaml", line: 1))
    }

    func testMethodsAreComparedExactly() {
        let cases: [(description: String, methods: Set<String>?, method: String, expected: Bool)] = [
            ("nil methods accept all", nil, "DELETE", true),
            ("listed method", ["GET", "HEAD"], "HEAD", true),
            ("unlisted method", ["GET", "HEAD"], "POST", false),
            ("case-sensitive", ["GET"], "get", false),
            ("empty set accepts nothing", [], "GET", false),
        ]
        for testCase in cases {
            XCTAssertEqual(match("/**", methods: testCase.methods).matches(method: testCase.method, path: "/x", host: nil),
                           testCase.expected, testCase.description)
        }
    }

    func testHostIsComparedCaseInsensitivelyWithoutPort() {
        let cases: [(description: String, routeHost: String?, requestHost: String?, expected: Bool)] = [
            ("any host when the route has none", nil, "whatever:1", true),
            ("any host when the route has none, no Host", nil, nil, true),
            ("exact", "api.example.com", "api.example.com", true),
            ("case-insensitive", "api.example.com", "API.Example.COM", true),
            ("port ignored", "api.example.com", "api.example.com:8443", true),
            ("trailing dot ignored", "api.example.com", "api.example.com.", true),
            ("other host", "api.example.com", "www.example.com", false),
            ("suffix is not a match", "example.com", "evil-example.com", false),
            ("prefix is not a match", "api.example.com", "api.example.com.evil.net", false),
            ("no Host header", "api.example.com", nil, false),
            ("IPv6 with port", "::1", "[::1]:8080", true),
            ("IPv6 route written in brackets", "[::1]", "[::1]:8080", true),
            ("IPv6 without port", "::1", "[::1]", true),
            ("other IPv6", "::1", "[::2]:8080", false),
            ("IPv4 with port", "127.0.0.1", "127.0.0.1:80", true),
        ]
        for testCase in cases {
            let routeMatch = match("/**", host: testCase.routeHost)
            XCTAssertEqual(routeMatch.matches(method: "GET", path: "/x", host: testCase.requestHost), testCase.expected,
                           testCase.description)
        }
    }

    /// `match` answers subtree and exact patterns from its own table of bytes: it must pick the
    /// same route as asking each route in order, for every kind of pattern, with and without
    /// methods and hosts, on paths at and around every pattern's edges.
    func testTheTableChoosesTheRouteEachRouteWouldChooseInOrder() {
        let patterns = ["/api/**", "/api", "/api/v1/**", "/healthz", "/", "/a/*/b", "/*.json", "/docs/**/index",
                        "/apix/**", "/v1/users", "/**"]
        let paths = ["/", "/api", "/api/", "/api/x", "/apix", "/apix/y", "/ap", "/api/v1", "/api/v1/z", "/api/v2",
                     "/healthz", "/healthz/", "/healthzz", "/health", "/a/x/b", "/a/b", "/x.json", "/d/x.json",
                     "/docs/index", "/docs/a/b/index", "/v1/users", "/v1/users/", "/v1/user", "/zzz", "",
                     "api/x", "/API/x"]
        let variants: [(methods: Set<String>?, host: String?)] = [(nil, nil), (["POST"], nil), (nil, "api.example.com"),
                                                                  (["GET"], "api.example.com")]
        var state: UInt64 = 7
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for round in 0..<300 {
            let routes = (0..<(1 + next() % 6)).map { index in
                let variant = variants[next() % variants.count]
                return route("r\(index)", match(patterns[next() % patterns.count], methods: variant.methods, host: variant.host))
            }
            let table = RouteTable(routes)
            for path in paths {
                for (method, host) in [("GET", nil), ("POST", "api.example.com"), ("GET", "API.example.com:80"), ("GET", "other")] as [(String, String?)] {
                    let expected = routes.first { $0.match.matches(method: method, path: path, host: host) }?.name
                    XCTAssertEqual(table.match(method: method, path: path, host: host)?.name, expected,
                                   "round \(round), \(method) \(path) host \(host ?? "-"): \(routes.map { "\($0.match.path)" })")
                }
            }
        }
        XCTAssertNil(RouteTable([]).match(method: "GET", path: "/", host: nil))
    }

    func testFirstMatchingRouteWins() {
        let table = RouteTable([
            route("public-docs", match("/docs/**", methods: ["GET", "HEAD"])),
            route("admin", match("/admin/**")),
            route("api-host", match("/api/**", host: "api.example.com")),
            route("api", match("/api/**")),
            route("users", match("/api/users/*")),  // shadowed by "api"
        ])
        let cases: [(description: String, method: String, path: String, host: String?, expected: String?)] = [
            ("docs by GET", "GET", "/docs/intro", nil, "public-docs"),
            ("docs by POST matches nothing", "POST", "/docs/intro", nil, nil),
            ("admin subtree root", "DELETE", "/admin", nil, "admin"),
            ("host-specific route first", "GET", "/api/users/1", "API.example.com:443", "api-host"),
            ("other host falls through", "GET", "/api/users/1", "other.example.com", "api"),
            ("no Host falls through", "GET", "/api/users/1", nil, "api"),
            ("no route", "GET", "/nothing", nil, nil),
            ("prefix of a route is not a match", "GET", "/adminx", nil, nil),
        ]
        for testCase in cases {
            XCTAssertEqual(table.match(method: testCase.method, path: testCase.path, host: testCase.host)?.name,
                           testCase.expected, testCase.description)
        }
    }

    func testCoversIsConservative() {
        let cases: [(description: String, earlier: RouteMatch, later: RouteMatch, expected: Bool)] = [
            ("identical", match("/a/*"), match("/a/*"), true),
            ("everything covers a subtree", match("/**"), match("/a/**"), true),
            ("subtree covers a deeper subtree", match("/a/**"), match("/a/b/**"), true),
            ("subtree covers a star below it", match("/a/**"), match("/a/*/c"), true),
            ("subtree covers its own root", match("/a/**"), match("/a"), true),
            ("subtree covers a ** right below", match("/a/**"), match("/a/**/z"), true),
            ("subtree does not cover a sibling prefix", match("/a/**"), match("/ab/**"), false),
            ("subtree does not cover a star that crosses its prefix", match("/a/**"), match("/a*"), false),
            ("star covers a literal it matches", match("/users/*"), match("/users/42"), true),
            ("star does not cover a deeper literal", match("/users/*"), match("/users/42/x"), false),
            ("star does not cover another star (unsure)", match("/*/x"), match("/a*/x"), false),
            ("narrower does not cover wider", match("/a/b/**"), match("/a/**"), false),
            ("all methods cover some", match("/**"), match("/a", methods: ["GET"]), true),
            ("superset of methods", match("/**", methods: ["GET", "POST"]), match("/a", methods: ["GET"]), true),
            ("subset of methods does not cover", match("/**", methods: ["GET"]), match("/a", methods: ["GET", "POST"]), false),
            ("some methods do not cover all", match("/**", methods: ["GET"]), match("/a"), false),
            ("any host covers one host", match("/**"), match("/a", host: "a.example"), true),
            ("same host (any case)", match("/**", host: "a.example"), match("/a", host: "A.example"), true),
            ("one host does not cover any host", match("/**", host: "a.example"), match("/a"), false),
            ("one host does not cover another", match("/**", host: "a.example"), match("/a", host: "b.example"), false),
        ]
        for testCase in cases {
            XCTAssertEqual(testCase.earlier.covers(testCase.later), testCase.expected, testCase.description)
        }
    }

    func testShadowedRoutesArePairedWithTheFirstEarlierRouteThatCoversThem() {
        let table = RouteTable([
            route("docs", match("/docs/**", methods: ["GET"])),
            route("api", match("/api/**")),
            route("all-api", match("/api/**")),           // covered by api
            route("docs-any-method", match("/docs/**")),  // not covered: docs takes GET only
            route("user", match("/api/users/*")),         // covered by api (first), and all-api
            route("catch-all", match("/**")),
            route("late", match("/late")),                // covered by catch-all
        ])
        let pairs = table.shadowed().map { "\($0.shadowed.name)<\($0.by.name)" }
        XCTAssertEqual(pairs, ["all-api<api", "user<api", "late<catch-all"])
        XCTAssertEqual(RouteTable([]).shadowed().count, 0)
    }

    /// A route is a value although its fields sit behind one reference: a changed copy leaves
    /// the original (and the table's) as it was, field by field.
    func testChangingACopyLeavesTheOriginal() {
        let original = route("api", match("/api/**", methods: ["GET"]))
        let table = RouteTable([original])
        var copy = original
        copy.name = "other"
        copy.index = 7
        copy.issuers = ["main"]
        copy.mode = .shadow
        copy.rateLimit = nil
        copy.match.methods = ["POST"]
        copy.denyStatus = 401
        XCTAssertEqual(original.name, "api")
        XCTAssertEqual(original.index, 0)
        XCTAssertNil(original.issuers)
        XCTAssertEqual(original.mode, .enforce)
        XCTAssertEqual(original.match.methods, ["GET"])
        XCTAssertEqual(original.denyStatus, 403)
        XCTAssertEqual(table.routes[0].name, "api")
        XCTAssertEqual(table.match(method: "GET", path: "/api/x", host: nil)?.name, "api")
        XCTAssertEqual(copy.name, "other")
        XCTAssertEqual(copy.index, 7)
        XCTAssertEqual(copy.issuers, ["main"])
        XCTAssertEqual(copy.mode, .shadow)
        XCTAssertEqual(copy.match.methods, ["POST"])
        XCTAssertEqual(copy.denyStatus, 401)
        // A copy of the changed copy shares again until one of them changes.
        var again = copy
        again.upstream = "elsewhere"
        XCTAssertEqual(copy.upstream, "api")
        XCTAssertEqual(again.name, "other")
    }
}
