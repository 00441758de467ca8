import Foundation
import GatehousePolicy
import GatehouseSessions
import XCTest
@testable import GatehouseConfig

/// `rate_limits` and `routes[].rate_limit` (SPEC §2, §13): the values, and every hostile form
/// refused with FILE:LINE:COL.
final class RateLimitConfigTests: ConfigFileTestCase {
    private func load(_ path: String) -> ConfigLoadResult {
        ConfigLoader.load(path: path, cpuCount: 1, cwd: "/", environment: { _ in nil })
    }

    private func config(route limit: String, top: String = "", server: String = "") throws -> ConfigLoadResult {
        load(try write("gatehouse.yaml", """
            \(server)\(top)upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - name: api
                match: { path: "/api/**" }
                upstream: api
                auth: none
                rate_limit: \(limit)

            """))
    }

    func testAValidLimitAndTheDefaults() throws {
        let result = try config(route: "{ rate: 20/s, burst: 40, key: client }")
        XCTAssertEqual(result.errors, [])
        let config = try XCTUnwrap(result.config)
        XCTAssertEqual(config.routes.routes[0].rateLimit, RateLimit(count: 20, unit: .second, burst: 40, key: .client))
        XCTAssertEqual(config.rateLimits, RateLimitSettings(store: .memory, maxKeys: RateLimitSettings.defaultMaxKeys))
        XCTAssertTrue(config.hasRateLimits)
        XCTAssertEqual(config.rateLimitHeaders, [])
    }

    func testKeyDefaultsToSubjectAndHeaderNamesAreLowercased() throws {
        let plain = try XCTUnwrap(try config(route: "{ rate: 5/m, burst: 1 }").config)
        XCTAssertEqual(plain.routes.routes[0].rateLimit?.key, .subject)
        let header = try XCTUnwrap(try config(route: #"{ rate: 100/h, burst: 10, key: "header:X-Api-Key" }"#,
                                              server: "server: { trusted_proxies: [\"127.0.0.1/32\"] }\n").config)
        XCTAssertEqual(header.routes.routes[0].rateLimit?.key, .header("x-api-key"))
        XCTAssertEqual(header.rateLimitHeaders, ["x-api-key"])
    }

    func testTheRedisStoreAndMaxKeys() throws {
        let result = try config(route: "{ rate: 1/s, burst: 1, key: client }",
                                top: "rate_limits: { store: \"redis://127.0.0.1:6390/1\", max_keys: 1000 }\n")
        XCTAssertEqual(result.errors, [])
        XCTAssertEqual(result.config?.rateLimits,
                       RateLimitSettings(store: .redis(host: "127.0.0.1", port: 6390, db: 1, password: nil), maxKeys: 1000))
    }

    /// Each hostile form: the message and where it points (line 8 is the `rate_limit` line).
    func testHostileFormsAreRefusedWithTheirPlace() throws {
        let rows: [(limit: String, message: String)] = [
            ("{ rate: 0/s, burst: 1 }", "must be at least 1"),
            ("{ rate: -1/s, burst: 1 }", "a whole number of requests"),
            ("{ rate: 99999999999999999999999/s, burst: 1 }", "at most 1000000 per unit"),
            ("{ rate: 1000001/s, burst: 1 }", "at most 1000000 per unit"),
            ("{ rate: 1.5/s, burst: 1 }", "a whole number"),
            ("{ rate: 5/d, burst: 1 }", "expected a rate like 20/s"),
            ("{ rate: 5/sec, burst: 1 }", "expected a rate like 20/s"),
            ("{ rate: 5, burst: 1 }", "expected a rate like 20/s"),
            ("{ rate: \"5 / s\", burst: 1 }", "expected a rate like 20/s"),
            ("{ rate: \"/s\", burst: 1 }", "a whole number"),
            ("{ rate: [5/s], burst: 1 }", "expected a rate like 20/s, 100/m or 1000/h, got a list"),
            ("{ rate: 5/s, burst: 0 }", "burst must be at least 1"),
            ("{ rate: 5/s, burst: -3 }", "burst must be at least 1"),
            ("{ rate: 5/s, burst: 99999999999999999999999 }", "burst is at most 1000000"),
            ("{ rate: 5/s, burst: 1000001 }", "burst is at most 1000000"),
            ("{ rate: 5/s, burst: ten }", "expected a whole number"),
            ("{ rate: 5/s, burst: 2.5 }", "expected a whole number"),
            ("{ rate: 5/s }", "rate_limit.burst: required key is missing"),
            ("{ burst: 5 }", "rate_limit.rate: required key is missing"),
            ("{ rate: 5/s, burst: 1, key: user }", "expected subject, client or header:NAME"),
            ("{ rate: 5/s, burst: 1, key: \"header:\" }", "needs a header name"),
            ("{ rate: 5/s, burst: 1, key: \"header:X Api\" }", "needs a header name"),
            ("{ rate: 5/s, burst: 1, key: \"header:X-Api\\nKey\" }", "needs a header name"),
            ("{ rate: 5/s, burst: 1, key: \"header:X-Ä\" }", "needs a header name"),
            ("{ rate: 5/s, burst: 1, key: \"header:\(String(repeating: "a", count: 200))\" }", "at most 128 bytes"),
            ("{ rate: 5/s, burst: 1, window: 10s }", "rate_limit.window: unknown key; valid keys: rate, burst, key"),
            ("true", "expected a mapping"),
        ]
        for row in rows {
            let result = try config(route: row.limit)
            XCTAssertNil(result.config, row.limit)
            let errors = result.errors.map(\.description)
            XCTAssertTrue(errors.contains { $0.contains(row.message) }, "\(row.limit): \(errors)")
            XCTAssertTrue(errors.allSatisfy { $0.contains("gatehouse.yaml:8:") }, "\(row.limit): \(errors)")
        }
    }

    func testHostileStoreAndMaxKeys() throws {
        let rows: [(top: String, message: String)] = [
            ("rate_limits: { store: redis }\n", "expected memory or a URL like redis://"),
            ("rate_limits: { store: \"redis://:secret@\" }\n", "expected memory or a URL"),
            ("rate_limits: { store: memory, max_keys: 0 }\n", "expected 1 to"),
            ("rate_limits: { store: memory, max_keys: 99999999999 }\n", "expected 1 to"),
            ("rate_limits: { stor: memory }\n", "rate_limits.stor: unknown key; valid keys: store, max_keys"),
        ]
        for row in rows {
            let result = try config(route: "{ rate: 1/s, burst: 1, key: client }", top: row.top)
            let errors = result.errors.map(\.description)
            XCTAssertTrue(errors.contains { $0.contains(row.message) && $0.contains("gatehouse.yaml:1:") }, "\(row.top): \(errors)")
            XCTAssertFalse(errors.contains { $0.contains("secret") }, "the password is never repeated")
        }
    }

    func testWarningsForLimitsThatCannotWorkAsWritten() throws {
        let header = try config(route: #"{ rate: 1/s, burst: 1, key: "header:X-Api-Key" }"#)
        XCTAssertEqual(header.errors, [])
        XCTAssertTrue(header.warnings.contains { $0.message.contains("never believed without server.trusted_proxies") },
                      "\(header.warnings)")
        let subject = try config(route: "{ rate: 1/s, burst: 1, key: subject }")
        XCTAssertTrue(subject.warnings.contains { $0.message.contains("keyed by client address") }, "\(subject.warnings)")
    }

    func testPolicyFilesMayCarryLimits() throws {
        try write("policies/a.yaml", """
            routes:
              - name: p
                match: { path: "/p/**" }
                upstream: api
                auth: none
                rate_limit: { rate: 3/m, burst: 0, key: client }

            """)
        let result = load(try write("gatehouse.yaml", """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            policy_files: ["policies/*.yaml"]

            """))
        XCTAssertTrue(result.errors.map(\.description).contains { $0.contains("policies/a.yaml:6:") && $0.contains("burst") },
                      "\(result.errors)")
    }
}
