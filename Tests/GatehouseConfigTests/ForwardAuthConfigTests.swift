import Foundation
import GatehousePolicy
import XCTest
@testable import GatehouseConfig

/// The `forward_auth` section (SPEC §2, §11): defaults, every key, hostile values with their
/// FILE:LINE:COL, and `allow_from` joining the trusted proxies.
final class ForwardAuthConfigTests: ConfigFileTestCase {
    private let routes = """
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: api, match: { path: "/api/**" }, upstream: api }

        """

    private func load(_ yaml: String) throws -> ConfigLoadResult {
        ConfigLoader.load(path: try write("gatehouse.yaml", yaml + routes), cpuCount: 1, cwd: "/", environment: { _ in nil })
    }

    private func errors(_ yaml: String) throws -> [String] {
        try load(yaml).errors.map(\.description)
    }

    func testAbsentSectionMeansNoEndpoint() throws {
        XCTAssertNil(try load("").config?.forwardAuth)
        XCTAssertNotNil(try load("").config)
    }

    func testDefaultsWithOnlyTheStyle() throws {
        let config = try XCTUnwrap(try load("forward_auth: { style: original }\n").config)
        let settings = try XCTUnwrap(config.forwardAuth)
        XCTAssertEqual(settings.path, "/_gatehouse/auth")
        XCTAssertEqual(settings.style, .original)
        XCTAssertEqual(settings.allowFrom.map(\.description), ["127.0.0.0/8", "::1/128"])
        XCTAssertTrue(settings.allows(peer: "127.0.0.1"))
        XCTAssertTrue(settings.allows(peer: "::1"))
        XCTAssertFalse(settings.allows(peer: "10.0.0.1"))
        // The peers that may ask count as trusted proxies (SPEC §11).
        XCTAssertEqual(config.server.trustedProxies.map(\.description), ["127.0.0.0/8", "::1/128"])
    }

    func testEveryKeyIsRead() throws {
        let yaml = """
            server: { trusted_proxies: ["10.0.0.0/8"] }
            forward_auth:
              path: /authz
              style: envoy
              allow_from: ["10.1.2.3", "192.168.0.0/16"]

            """
        let config = try XCTUnwrap(try load(yaml).config)
        let settings = try XCTUnwrap(config.forwardAuth)
        XCTAssertEqual(settings.path, "/authz")
        XCTAssertEqual(settings.style, .envoy)
        XCTAssertEqual(settings.allowFrom.map(\.description), ["10.1.2.3/32", "192.168.0.0/16"])
        XCTAssertFalse(settings.allows(peer: "127.0.0.1"))
        XCTAssertTrue(settings.allows(peer: "192.168.4.5"))
        XCTAssertEqual(config.server.trustedProxies.map(\.description), ["10.0.0.0/8", "10.1.2.3/32", "192.168.0.0/16"])
    }

    func testStyleIsRequiredAndListsTheValidOnes() throws {
        XCTAssertEqual(try errors("forward_auth: { path: /a }\n"),
                       ["\(directory)/gatehouse.yaml:1:15: error: forward_auth.style: required key is missing"])
        XCTAssertEqual(try errors("forward_auth: { style: nginx }\n"),
                       ["\(directory)/gatehouse.yaml:1:24: error: forward_auth.style: expected one of forwarded, original, envoy, got \"nginx\""])
        XCTAssertEqual(try errors("forward_auth: { style: Forwarded }\n").count, 1)
    }

    func testUnknownKeysAreErrorsAtTheKey() throws {
        XCTAssertEqual(try errors("forward_auth:\n  style: forwarded\n  allow-from: [\"10.0.0.0/8\"]\n"),
                       ["\(directory)/gatehouse.yaml:3:3: error: forward_auth.allow-from: unknown key; valid keys: path, style, allow_from"])
        XCTAssertEqual(try errors("forward_auth: yes\n").count, 1)
        XCTAssertEqual(try errors("forward_auth: [a]\n").count, 1)
    }

    func testHostilePaths() throws {
        for path in ["auth", "/", "/a/", "/a/../b", "//a", "/a?x=1", "/a;b", "/%61uth", "/a%2Fb", "\"\"", "/a b"] {
            let found = try errors("forward_auth: { style: forwarded, path: \(path) }\n")
            XCTAssertEqual(found.count, 1, "\(path): \(found)")
            XCTAssertTrue(found.first?.contains("forward_auth.path") ?? false, "\(path): \(found)")
        }
    }

    func testThePathMustNotBeASessionEndpoint() throws {
        let yaml = """
            sessions:
              cookie: { secure: false }
              keepalive_path: /_gatehouse/auth
            forward_auth: { style: forwarded }

            """
        // The default path collides as much as a written one.
        for block in ["{ style: forwarded }", "{ style: forwarded, path: /_gatehouse/auth }"] {
            let clash = try errors(yaml.replacingOccurrences(of: "{ style: forwarded }", with: block))
            XCTAssertEqual(clash.count, 1, "\(block): \(clash)")
            XCTAssertTrue(clash.first?.contains("is also sessions.keepalive_path") ?? false, "\(clash)")
        }
    }

    func testHostileAllowFrom() throws {
        for list in ["[]", "[\"localhost\"]", "[\"127.0.0.1/33\"]", "[\"::1/129\"]", "\"127.0.0.1\"", "[[\"a\"]]", "[\"\"]"] {
            let found = try errors("forward_auth: { style: original, allow_from: \(list) }\n")
            XCTAssertEqual(found.count, 1, "\(list): \(found)")
            XCTAssertTrue(found.first?.contains("forward_auth.allow_from") ?? false, "\(list): \(found)")
        }
    }
}
