import XCTest
import GatehousePolicy

/// The `cors` block (SPEC §2) and the preflight / response decisions of SPEC §6.
final class CORSPolicyTests: XCTestCase {
    /// The SPEC §2 example block.
    private func specPolicy(credentials: Bool = true) throws -> CORSPolicy {
        try CORSPolicy(
            allowOrigins: ["https://app.example.com", "https://*.example.com"],
            allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
            allowHeaders: ["Authorization", "Content-Type"],
            exposeHeaders: ["X-Request-Id"],
            allowCredentials: credentials, maxAgeSeconds: 600)
    }

    private func preflightHeaders(origin: String, allowHeaders: String?, credentials: Bool = true,
                                  maxAge: String = "600") -> CORSPolicy.Preflight {
        var headers = [("Access-Control-Allow-Origin", origin)]
        if credentials { headers.append(("Access-Control-Allow-Credentials", "true")) }
        headers.append(("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE"))
        if let allowHeaders { headers.append(("Access-Control-Allow-Headers", allowHeaders)) }
        headers.append(("Access-Control-Max-Age", maxAge))
        headers.append(("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"))
        return .allow(headers)
    }

    func testPreflightDecisions() throws {
        let policy = try specPolicy()
        let app = "https://app.example.com"
        let cases: [(description: String, origin: String, method: String, headers: String?, allowed: Bool)] = [
            ("listed origin, listed method, no headers", app, "PUT", nil, true),
            ("wildcard origin", "https://a.b.example.com", "DELETE", nil, true),
            ("origin with default port", "https://app.example.com:443", "GET", nil, true),
            ("listed headers", app, "POST", "authorization,content-type", true),
            ("header names in any case", app, "POST", "AUTHORIZATION, Content-Type", true),
            ("whitespace and empty elements", app, "POST", " authorization , ,content-type ", true),
            ("empty request headers", app, "POST", "", true),
            ("whitespace-only request headers", app, "POST", "  \t ", true),
            ("unlisted header", app, "POST", "authorization,x-custom", false),
            ("safelisted name gets no implicit pass", app, "POST", "accept", false),
            ("header name that is not a token", app, "POST", "x custom", false),
            ("unlisted method", app, "OPTIONS", nil, false),
            ("simple method not listed", app, "HEAD", nil, false),
            ("method case matters", app, "put", nil, false),
            ("empty method", app, "", nil, false),
            ("unlisted origin", "https://evil.com", "GET", nil, false),
            ("bare domain of a wildcard", "https://example.com", "GET", nil, false),
            ("lookalike domain", "https://evilexample.com", "GET", nil, false),
            ("domain used as prefix", "https://a.example.com.evil.net", "GET", nil, false),
            ("other scheme", "http://app.example.com", "GET", nil, false),
            ("null origin not listed", "null", "GET", nil, false),
            ("malformed origin", "app.example.com", "GET", nil, false),
        ]
        for testCase in cases {
            let decision = policy.preflight(origin: testCase.origin, method: testCase.method, requestHeaders: testCase.headers)
            if testCase.allowed {
                XCTAssertEqual(decision, preflightHeaders(origin: testCase.origin, allowHeaders: "Authorization, Content-Type"),
                               testCase.description)
            } else {
                XCTAssertEqual(decision, .reject, testCase.description)
            }
        }
    }

    func testSimpleMethodsNeedListingToo() throws {
        let policy = try CORSPolicy(allowOrigins: ["https://a.com"], allowMethods: ["put"], allowHeaders: [],
                                    exposeHeaders: [], allowCredentials: false, maxAgeSeconds: 0)
        XCTAssertEqual(policy.allowMethods, ["PUT"])
        for method in ["GET", "HEAD", "POST"] {
            XCTAssertEqual(policy.preflight(origin: "https://a.com", method: method, requestHeaders: nil), .reject, method)
        }
        XCTAssertEqual(policy.preflight(origin: "https://a.com", method: "PUT", requestHeaders: nil), .allow([
            ("Access-Control-Allow-Origin", "https://a.com"),
            ("Access-Control-Allow-Methods", "PUT"),
            ("Access-Control-Max-Age", "0"),
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]), "no allow_headers: the header is omitted")
    }

    func testAnyOriginWithoutCredentialsAnswersStar() throws {
        let policy = try CORSPolicy(allowOrigins: ["*"], allowMethods: ["GET", "POST"], allowHeaders: ["*"],
                                    exposeHeaders: [], allowCredentials: false, maxAgeSeconds: 60)
        XCTAssertTrue(policy.allows(origin: "http://localhost:3000"))
        XCTAssertFalse(policy.allows(origin: "null"), "null only when listed")
        XCTAssertEqual(policy.preflight(origin: "https://x.test", method: "POST", requestHeaders: " x-custom, content-type "), .allow([
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET, POST"),
            ("Access-Control-Allow-Headers", "x-custom, content-type"),
            ("Access-Control-Max-Age", "60"),
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]), "any header: the requested names are echoed")
        XCTAssertEqual(policy.preflight(origin: "https://x.test", method: "GET", requestHeaders: "bad header"), .reject)
        XCTAssertEqual(policy.responseHeaders(origin: "https://x.test").map(\.0), ["Access-Control-Allow-Origin", "Vary"])
        XCTAssertEqual(policy.responseHeaders(origin: "https://x.test").first?.1, "*")
    }

    func testNullOriginOnlyWhenListed() throws {
        let listed = try CORSPolicy(allowOrigins: ["null"], allowMethods: ["GET"], allowHeaders: [], exposeHeaders: [],
                                    allowCredentials: false, maxAgeSeconds: 5)
        XCTAssertTrue(listed.allows(origin: "null"))
        XCTAssertEqual(listed.responseHeaders(origin: "null").first?.1, "null")
        XCTAssertFalse(try specPolicy().allows(origin: "null"))
    }

    func testResponseHeadersForAllowedOriginsOnly() throws {
        let policy = try specPolicy()
        XCTAssertEqual(policy.responseHeaders(origin: "https://a.example.com").map { "\($0): \($1)" }, [
            "Access-Control-Allow-Origin: https://a.example.com",
            "Access-Control-Allow-Credentials: true",
            "Access-Control-Expose-Headers: X-Request-Id",
            "Vary: Origin",
        ])
        XCTAssertEqual(try specPolicy(credentials: false).responseHeaders(origin: "https://app.example.com").map(\.0),
                       ["Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary"])
    }

    /// SPEC §6: on a route with a policy the response depends on the origin, so every response
    /// says so, also when the origin is absent or refused (a shared cache keys on it).
    func testOtherOriginsGetVaryOriginOnly() throws {
        let policies = [("credentials", try specPolicy()), ("no credentials", try specPolicy(credentials: false)),
                        ("* with credentials off is the exception", try CORSPolicy(
                            allowOrigins: ["*"], allowMethods: ["GET"], allowHeaders: [], exposeHeaders: [],
                            allowCredentials: false, maxAgeSeconds: 5))]
        let origins: [String?] = [nil, "https://evil.com", "null", "", "https://a.example.com.evil.net",
                                  "https://app.example.com\r\nX-Forged: 1", String(repeating: "a", count: 10_000)]
        for (name, policy) in policies {
            for origin in origins where !(origin.map(policy.allows) ?? false) {
                let expected = name.hasPrefix("*") ? [] : ["Vary: Origin"]
                XCTAssertEqual(policy.responseHeaders(origin: origin).map { "\($0): \($1)" }, expected,
                               "\(name), origin \(origin.debugDescription.prefix(60))")
            }
            XCTAssertEqual(policy.varyHeaders.count, name.hasPrefix("*") ? 0 : 1, name)
        }
    }

    func testConfigProblemsNameTheBadValue() {
        struct Block {
            var origins = ["https://a.com"], methods = ["GET"], headers: [String] = [], expose: [String] = []
            var credentials = false, maxAge = 0
        }
        let cases: [(description: String, block: Block, key: String, index: Int?, message: String)] = [
            ("star with credentials", Block(origins: ["*"], credentials: true), "allow_origins", 0,
             "allow_origins [\"*\"] with allow_credentials is not allowed"),
            ("star among others", Block(origins: ["https://a.com", "*"]), "allow_origins", 1,
             "allow_origins: \"*\" must be the only entry (it already allows every origin)"),
            ("origin with a path", Block(origins: ["https://a.com", "https://b.com/app"]), "allow_origins", 1,
             "allow_origins: \"https://b.com/app\" has a path, query or fragment; an origin is scheme://host[:port] only"),
            ("no origins", Block(origins: []), "allow_origins", nil,
             "allow_origins is empty; list at least one origin, or write `cors: false` to turn CORS off"),
            ("star method", Block(methods: ["GET", "*"]), "allow_methods", 1,
             "allow_methods: \"*\" is not supported; list the methods, as in [GET, POST]"),
            ("method with a space", Block(methods: ["GET POST"]), "allow_methods", 0,
             "allow_methods: \"GET POST\" is not a method name"),
            ("header with a colon", Block(headers: ["X-A:"]), "allow_headers", 0,
             "allow_headers: \"X-A:\" is not a header name"),
            ("star header among others", Block(headers: ["X-A", "*"]), "allow_headers", 1,
             "allow_headers: \"*\" must be the only entry"),
            ("star expose header", Block(expose: ["*"]), "expose_headers", 0,
             "expose_headers: \"*\" is not supported; list the header names"),
            ("empty expose header", Block(expose: [""]), "expose_headers", 0,
             "expose_headers: \"\" is not a header name"),
            ("negative max age", Block(maxAge: -1), "max_age", nil, "max_age: -1 seconds is negative"),
        ]
        for testCase in cases {
            let block = testCase.block
            XCTAssertThrowsError(try CORSPolicy(allowOrigins: block.origins, allowMethods: block.methods,
                                                allowHeaders: block.headers, exposeHeaders: block.expose,
                                                allowCredentials: block.credentials, maxAgeSeconds: block.maxAge),
                                 testCase.description) { error in
                XCTAssertEqual(error as? CORSConfigError,
                               CORSConfigError(key: testCase.key, index: testCase.index, message: testCase.message),
                               testCase.description)
                XCTAssertEqual(String(describing: error), testCase.message, testCase.description)
            }
        }
    }

    func testEveryProblemIsListed() {
        let problems = CORSPolicy.problems(allowOrigins: ["https://a.com/", "ftp//x"], allowMethods: ["G ET"],
                                           allowHeaders: ["a b"], exposeHeaders: ["*"],
                                           allowCredentials: true, maxAgeSeconds: -5)
        XCTAssertEqual(problems.map(\.key), ["allow_origins", "allow_origins", "allow_methods", "allow_headers",
                                             "expose_headers", "max_age"])
        XCTAssertEqual(problems.map(\.index), [0, 1, 0, 0, 0, nil])
        XCTAssertTrue(CORSPolicy.problems(allowOrigins: ["https://a.com"], allowMethods: ["GET"], allowHeaders: [],
                                          exposeHeaders: [], allowCredentials: true, maxAgeSeconds: 0).isEmpty)
    }

    func testDuplicatesAreDropped() throws {
        let policy = try CORSPolicy(allowOrigins: ["https://a.com", "https://A.com:443"], allowMethods: ["get", "GET", "Post"],
                                    allowHeaders: ["X-A", "x-a", "X-B"], exposeHeaders: [],
                                    allowCredentials: false, maxAgeSeconds: 1)
        XCTAssertEqual(policy.origins.map(\.description), ["https://a.com"])
        XCTAssertEqual(policy.allowMethods, ["GET", "POST"])
        XCTAssertEqual(policy.allowHeaders, ["X-A", "X-B"])
    }

    func testGatewayOwnsEveryAccessControlResponseHeader() {
        let cases: [(name: String, owned: Bool)] = [
            ("access-control-allow-origin", true), ("access-control-allow-credentials", true),
            ("access-control-allow-methods", true), ("access-control-allow-headers", true),
            ("access-control-max-age", true), ("access-control-expose-headers", true),
            ("access-control-allow-private-network", true),
            ("vary", false), ("content-type", false), ("x-access-control-allow-origin", false), ("access-control", false),
        ]
        for testCase in cases {
            XCTAssertEqual(CORSHeaders.isCORSResponseHeader(testCase.name), testCase.owned, testCase.name)
        }
    }

    func testPreflightEqualityComparesHeadersInOrder() {
        XCTAssertEqual(CORSPolicy.Preflight.allow([("A", "1"), ("B", "2")]), .allow([("A", "1"), ("B", "2")]))
        XCTAssertNotEqual(CORSPolicy.Preflight.allow([("A", "1"), ("B", "2")]), .allow([("B", "2"), ("A", "1")]))
        XCTAssertNotEqual(CORSPolicy.Preflight.allow([("A", "1")]), .allow([("A", "2")]))
        XCTAssertNotEqual(CORSPolicy.Preflight.allow([]), .reject)
    }
}
