import Foundation
import GatehouseCore
import GatehousePolicy
import XCTest
@testable import GatehouseConfig

/// Values of loaded configs: defaults, resolved paths, parsed addresses and routes.
final class ConfigLoaderTests: ConfigFileTestCase {
    private func loadValid(_ path: String, cpuCount: Int = 2, file: StaticString = #filePath,
                           line: UInt = #line) throws -> GatewayConfig {
        let result = ConfigLoader.load(path: path, cpuCount: cpuCount)
        XCTAssertEqual(result.errors, [], file: file, line: line)
        return try XCTUnwrap(result.config, file: file, line: line)
    }

    private let minimalRoutes = """
        upstreams:
          api: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - { name: all, match: { path: "/**" }, upstream: api }

        """

    func testEmptyConfigHasEveryDefault() throws {
        let config = try loadValid(try write("gatehouse.yaml", ""), cpuCount: 3)
        XCTAssertEqual(config.server.listen, [ListenAddress(host: "0.0.0.0", port: 8080)])
        XCTAssertEqual(config.server.workers, 3)
        XCTAssertEqual(config.server.maxHeaderBytes, 16 * 1024)
        XCTAssertEqual(config.server.maxBodyBytes, 10 * 1024 * 1024)
        XCTAssertEqual(config.server.readTimeoutMs, 30_000)
        XCTAssertEqual(config.server.shutdownGraceMs, 10_000)
        XCTAssertTrue(config.server.trustedProxies.isEmpty)
        XCTAssertNil(config.server.publicOrigin)
        XCTAssertEqual(config.server.pathPolicy, .strict)
        XCTAssertNil(config.admin)
        XCTAssertTrue(config.upstreams.isEmpty)
        XCTAssertTrue(config.routes.routes.isEmpty)
        XCTAssertEqual(config.accessLog.path, "stdout")
        XCTAssertEqual(config.accessLog.format, .json)
    }

    func testEmptyConfigWarnsThatEveryRequestGets404() throws {
        let result = ConfigLoader.load(path: try write("gatehouse.yaml", "# nothing\n"), cpuCount: 2)
        XCTAssertEqual(result.warnings.map(\.message), ["no routes: every request gets 404"])
    }

    func testRouteAndUpstreamDefaults() throws {
        let config = try loadValid(try write("gatehouse.yaml", minimalRoutes))
        let upstream = try XCTUnwrap(config.upstreams["api"])
        XCTAssertEqual(upstream.targets, [UpstreamTarget(host: "127.0.0.1", port: 9000)])
        XCTAssertEqual(upstream.connectTimeoutMs, 2000)
        XCTAssertEqual(upstream.timeoutMs, 30_000)
        XCTAssertEqual(upstream.maxIdlePerWorker, 32)
        XCTAssertTrue(upstream.preserveHost)
        let route = try XCTUnwrap(config.routes.routes.first)
        XCTAssertEqual(route.auth, .required)
        XCTAssertFalse(route.stripAuthorization)
        XCTAssertEqual(route.denyStatus, 403)
        XCTAssertNil(route.match.methods)
        XCTAssertNil(route.match.host)
    }

    func testWorkersZeroMeansOnePerCoreCappedAt64() throws {
        let path = try write("gatehouse.yaml", "server: { workers: 0 }\n" + minimalRoutes)
        XCTAssertEqual(try loadValid(path, cpuCount: 8).server.workers, 8)
        XCTAssertEqual(try loadValid(path, cpuCount: 200).server.workers, 64)
        XCTAssertEqual(try loadValid(path, cpuCount: 0).server.workers, 1)
    }

    func testAccessLogPathIsRelativeToTheConfigFolder() throws {
        let path = try write("conf/gatehouse.yaml", "access_log: { path: ../logs/./access.log }\n")
        XCTAssertEqual(try loadValid(path).accessLog.path, "\(directory)/logs/access.log")
    }

    func testAbsoluteAccessLogPathIsKeptAndStdoutIsNotAPath() throws {
        let absolute = try write("a.yaml", "access_log: { path: /var/log/gatehouse.log, format: combined }\n")
        XCTAssertEqual(try loadValid(absolute).accessLog.path, "/var/log/gatehouse.log")
        XCTAssertEqual(try loadValid(absolute).accessLog.format, .combined)
        let stdout = try write("b.yaml", "access_log: { path: stdout }\n")
        XCTAssertEqual(try loadValid(stdout).accessLog.path, "stdout")
    }

    func testRelativePathsResolveAgainstTheNamingFileThenTheWorkingDirectory() {
        XCTAssertEqual(ConfigPaths.absolute("a.log", relativeTo: "conf", cwd: "/srv"), "/srv/conf/a.log")
        XCTAssertEqual(ConfigPaths.absolute("../a.log", relativeTo: "conf", cwd: "/srv"), "/srv/a.log")
        XCTAssertEqual(ConfigPaths.absolute("a.log", relativeTo: "", cwd: "/srv"), "/srv/a.log")
        XCTAssertEqual(ConfigPaths.absolute("a.log", relativeTo: "/etc/gh", cwd: "/srv"), "/etc/gh/a.log")
        XCTAssertEqual(ConfigPaths.absolute("/x/a.log", relativeTo: "conf", cwd: "/srv"), "/x/a.log")
        XCTAssertEqual(ConfigPaths.absolute("../../../a", relativeTo: "/etc", cwd: "/"), "/a")
        XCTAssertEqual(ConfigPaths.directory(of: "gatehouse.yaml"), "")
        XCTAssertEqual(ConfigPaths.directory(of: "/gatehouse.yaml"), "/")
        XCTAssertEqual(ConfigPaths.relative("conf/policies/a.yaml", to: "conf"), "policies/a.yaml")
    }

    func testPolicyGlobsAreRelativeToTheConfigFolderInListThenNameOrder() throws {
        // A folder name with glob characters: only the operator's pattern is a pattern.
        let path = try write("conf [1]/gatehouse.yaml", """
            upstreams:
              api: { targets: ["http://127.0.0.1:9000"] }
            policy_files: ["late/*.yaml", "policies/*.yaml"]
            routes:
              - { name: main, match: { path: "/main" }, upstream: api }

            """)
        try write("conf [1]/policies/b.yaml", "routes:\n  - { name: b, match: { path: /b }, upstream: api }\n")
        try write("conf [1]/policies/a.yaml", "routes:\n  - { name: a, match: { path: /a }, upstream: api }\n")
        try write("conf [1]/late/z.yaml", "routes:\n  - { name: z, match: { path: /z }, upstream: api }\n")
        let config = try loadValid(path)
        XCTAssertEqual(config.routes.routes.map(\.name), ["main", "z", "a", "b"])
        XCTAssertEqual(config.routes.routes[2].location, SourceLocation(file: "policies/a.yaml", line: 2, column: 5))
    }

    func testAPolicyFileMatchedTwiceIsLoadedOnce() throws {
        let path = try write("gatehouse.yaml", """
            upstreams: { api: { targets: ["http://127.0.0.1:9000"] } }
            policy_files: ["p/a.yaml", "p/*.yaml"]

            """)
        try write("p/a.yaml", "routes:\n  - { name: a, match: { path: /a }, upstream: api }\n")
        XCTAssertEqual(try loadValid(path).routes.routes.map(\.name), ["a"])
    }

    func testValuesOfTheFullGoldenConfig() throws {
        let golden = GoldenCheckTests.goldenDirectory
        let config = try loadValid("\(golden)/valid_full.yaml")
        XCTAssertEqual(config.server.listen, [ListenAddress(host: "0.0.0.0", port: 8080), ListenAddress(host: "::1", port: 8081)])
        XCTAssertEqual(config.server.workers, 4)
        XCTAssertEqual(config.server.maxHeaderBytes, 32 * 1024)
        XCTAssertEqual(config.server.maxBodyBytes, 1024 * 1024)
        XCTAssertEqual(config.server.readTimeoutMs, 15_000)
        XCTAssertEqual(config.server.shutdownGraceMs, 5_000)
        XCTAssertEqual(config.server.trustedProxies.count, 2)
        XCTAssertEqual(config.server.publicOrigin, "https://api.example.com")
        XCTAssertEqual(config.server.pathPolicy, .lenient)
        XCTAssertEqual(config.admin?.listen, ListenAddress(host: "127.0.0.1", port: 9901))
        let api = try XCTUnwrap(config.upstreams["api"])
        XCTAssertEqual(api.targets, [UpstreamTarget(host: "127.0.0.1", port: 9000), UpstreamTarget(host: "backend.internal", port: 80)])
        XCTAssertEqual(api.connectTimeoutMs, 500)
        XCTAssertEqual(api.timeoutMs, 60_000)
        XCTAssertEqual(api.maxIdlePerWorker, 8)
        XCTAssertFalse(api.preserveHost)
        XCTAssertEqual(config.upstreams["auth"]?.targets, [UpstreamTarget(host: "::1", port: 9100)])

        let routes = config.routes.routes
        XCTAssertEqual(routes.map(\.name), ["public-docs", "login", "api"])
        XCTAssertEqual(routes[0].match.methods, ["GET", "HEAD"])
        XCTAssertEqual(routes[0].auth, AuthRequirement.none)
        XCTAssertEqual(routes[0].location, SourceLocation(file: "\(golden)/valid_full.yaml", line: 27, column: 5))
        XCTAssertEqual(routes[1].auth, .optional)
        XCTAssertEqual(routes[2].match.host, "api.example.com")
        XCTAssertTrue(routes[2].stripAuthorization)
        XCTAssertEqual(routes[2].denyStatus, 401)
        XCTAssertEqual(config.accessLog.path, "\(golden)/logs/access.log")
        XCTAssertEqual(config.accessLog.format, .combined)
    }

    /// SPEC §3.2: merge keys and anchors are refused (they were accepted before issue 9), with
    /// the position of the first one, and nothing else of the file is reported.
    func testYAMLMergeKeysAndAnchorsAreRefused() throws {
        let path = try write("gatehouse.yaml", """
            upstreams:
              base: &defaults
                targets: ["http://127.0.0.1:9000"]
                connect_timeout: 1s
              api:
                <<: *defaults
                timeout: 9s
            routes:
              - { name: a, match: { path: /a }, upstream: api }

            """)
        let result = ConfigLoader.load(path: path, cpuCount: 2)
        XCTAssertNil(result.config)
        XCTAssertEqual(result.errors.count, 1)
        XCTAssertEqual(result.errors.first.map { "\($0.location.line):\($0.location.column)" }, "2:9")
        XCTAssertEqual(result.errors.first?.message.hasPrefix("YAML anchor \"&defaults\" is not allowed"), true)
    }

    /// SPEC §3.2: the pairwise shadowing check is skipped beyond 1,000 routes (a 4 MiB policy
    /// file holds ~50,000: minutes of comparisons), with a warning; below, it runs as before.
    func testShadowingIsNotCheckedBeyondAThousandRoutes() throws {
        func config(routes count: Int) -> String {
            "upstreams:\n  api:\n    targets: [\"http://127.0.0.1:9000\"]\nroutes:\n"
                + "  - { name: all, match: { path: \"/**\" }, upstream: api, auth: none }\n"
                + (1..<count).map { "  - { name: r\($0), match: { path: \"/p\($0)/**\" }, upstream: api, auth: none }\n" }
                    .joined()
        }
        let many = ConfigLoader.load(path: try write("many.yaml", config(routes: 1001)), cpuCount: 2)
        XCTAssertNotNil(many.config)
        XCTAssertEqual(many.problems.filter { $0.message.contains("can never match: route") }.count, 0)
        XCTAssertEqual(many.problems.filter { $0.message.hasPrefix("1001 routes: more than 1000") }.count, 1)
        let fewer = ConfigLoader.load(path: try write("fewer.yaml", config(routes: 1000)), cpuCount: 2)
        XCTAssertEqual(fewer.problems.filter { $0.message.contains("can never match: route") }.count, 999)
    }

    func testNullValuesMeanNotSet() throws {
        let path = try write("gatehouse.yaml", "server:\n  workers: ~\n  public_origin:\nadmin:\n")
        let config = try loadValid(path, cpuCount: 5)
        XCTAssertEqual(config.server.workers, 5)
        XCTAssertNil(config.server.publicOrigin)
        XCTAssertNil(config.admin)
    }

    func testUnusedUpstreamIsAWarning() throws {
        // `auth: none`: without a jwt section a route that needs a caller is a warning of its own.
        let routes = minimalRoutes.replacingOccurrences(of: "upstream: api }", with: "upstream: api, auth: none }")
        let path = try write("gatehouse.yaml", routes + "  # spare\n")
        try write("spare.yaml", routes.replacingOccurrences(of: "upstreams:\n", with: "upstreams:\n  spare: { targets: [\"http://h\"] }\n"))
        XCTAssertTrue(ConfigLoader.load(path: path, cpuCount: 1).warnings.isEmpty)
        let spare = ConfigLoader.load(path: "\(directory)/spare.yaml", cpuCount: 1)
        XCTAssertEqual(spare.warnings.map(\.message), ["upstreams.spare: no route uses this upstream"])
        XCTAssertNotNil(spare.config)
    }
}
