import Foundation
import GatehouseCore
import XCTest
@testable import GatehouseConfig

/// `routes[].websocket` and `server.tunnel_idle_timeout` (SPEC §2, §12), also in policy files.
final class WebSocketConfigTests: ConfigFileTestCase {
    private func config(server: String = "", route: String = "", policy: String? = nil) throws -> ConfigLoadResult {
        var text = server.isEmpty ? "" : "server:\n\(server)\n"
        text += """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: live, match: { path: "/live/**" }, upstream: api, auth: none\(route) }

            """
        if let policy {
            text += "policy_files: [\"policies/*.yaml\"]\n"
            try FileManager.default.createDirectory(atPath: "\(directory)/policies", withIntermediateDirectories: true)
            try write("policies/ws.yaml", policy)
        }
        return ConfigLoader.load(path: try write("gatehouse.yaml", text), cpuCount: 1)
    }

    func testDefaults() throws {
        let loaded = try XCTUnwrap(try config().config)
        XCTAssertEqual(loaded.server.tunnelIdleTimeoutMs, 600_000)
        XCTAssertEqual(loaded.routes.routes.first?.websocket, false)
    }

    func testWebSocketRouteAndIdleTimeout() throws {
        let loaded = try XCTUnwrap(try config(server: "  tunnel_idle_timeout: 45s", route: ", websocket: true").config)
        XCTAssertEqual(loaded.server.tunnelIdleTimeoutMs, 45_000)
        XCTAssertEqual(loaded.routes.routes.first?.websocket, true)
    }

    func testWebSocketInAPolicyFile() throws {
        let policy = "routes:\n  - { name: feed, match: { path: \"/feed/**\" }, upstream: api, auth: none, websocket: true }\n"
        let loaded = try XCTUnwrap(try config(policy: policy).config)
        XCTAssertEqual(loaded.routes.routes.map(\.websocket), [false, true])
    }

    func testHostileValuesAreErrorsWithTheirPlace() throws {
        let rows: [(String, String, String, String)] = [
            ("", ", websocket: \"yes\"", "gatehouse.yaml:4:86:", "expected true or false"),
            ("", ", websocket: 1", "gatehouse.yaml:4:86:", "expected true or false"),
            ("", ", websocket: [true]", "gatehouse.yaml:4:86:", "expected true or false"),
            ("  tunnel_idle_timeout: 0s", "", "gatehouse.yaml:2:24:", "greater than 0"),
            ("  tunnel_idle_timeout: 500ms", "", "gatehouse.yaml:2:24:", "at least 1s"),
            ("  tunnel_idle_timeout: ten", "", "gatehouse.yaml:2:24:", "expected a duration"),
            ("  tunnel_idle_timeout: -5s", "", "gatehouse.yaml:2:24:", "expected a duration"),
            ("  tunnel_idle_timout: 5s", "", "gatehouse.yaml:2:", "tunnel_idle_timeout"),
        ]
        for (server, route, place, message) in rows {
            let result = try config(server: server, route: route)
            XCTAssertNil(result.config, "\(server) \(route)")
            let text = result.errors.map { "\($0.location):\($0.message)" }.joined(separator: "\n")
            XCTAssertTrue(text.contains(place), "\(server)\(route): \(text)")
            XCTAssertTrue(text.contains(message), "\(server)\(route): \(text)")
        }
    }

    func testHostileWebSocketInAPolicyFileNamesThatFile() throws {
        let policy = "routes:\n  - { name: feed, match: { path: \"/f/**\" }, upstream: api, auth: none, websocket: maybe }\n"
        let result = try config(policy: policy)
        XCTAssertNil(result.config)
        XCTAssertTrue(result.errors.map { "\($0.location)" }.joined().contains("ws.yaml:2:"), "\(result.errors)")
    }
}
