import GatehouseCore
import XCTest
@testable import GatehouseConfig

/// The `check` verdict and ordering (SPEC §10).
final class CheckReportTests: XCTestCase {
    private func problem(_ severity: ConfigProblem.Severity, _ file: String, _ line: Int, _ column: Int,
                         _ message: String) -> ConfigProblem {
        ConfigProblem(severity, at: SourceLocation(file: file, line: line, column: column), message)
    }

    func testNoProblemsIsValidWithExitZero() {
        let report = CheckReport.render(result: ConfigLoadResult(config: nil, problems: []), configPath: "g.yaml")
        XCTAssertEqual(report.stderr, "")
        XCTAssertEqual(report.stdout, "configuration g.yaml is valid\n")
        XCTAssertEqual(report.exitCode, 0)
    }

    func testWarningsAloneStillPass() {
        let result = ConfigLoadResult(config: nil, problems: [problem(.warning, "g.yaml", 3, 5, "w")])
        let report = CheckReport.render(result: result, configPath: "g.yaml")
        XCTAssertEqual(report.stderr, "g.yaml:3:5: warning: w\n")
        XCTAssertEqual(report.stdout, "configuration g.yaml is valid\n")
        XCTAssertEqual(report.exitCode, 0)
    }

    func testErrorCountIsSingularOrPlural() {
        let one = ConfigLoadResult(config: nil, problems: [problem(.error, "g.yaml", 1, 1, "a"),
                                                           problem(.warning, "g.yaml", 2, 1, "b")])
        XCTAssertEqual(CheckReport.render(result: one, configPath: "g.yaml").stdout, "configuration g.yaml has 1 error\n")
        XCTAssertEqual(CheckReport.render(result: one, configPath: "g.yaml").exitCode, 1)
        let two = ConfigLoadResult(config: nil, problems: [problem(.error, "g.yaml", 1, 1, "a"),
                                                           problem(.error, "g.yaml", 2, 1, "b")])
        XCTAssertEqual(CheckReport.render(result: two, configPath: "g.yaml").stdout, "configuration g.yaml has 2 errors\n")
    }

    func testProblemsAreSortedByFileLineColumnAndStableOtherwise() {
        let result = ConfigLoadResult(config: nil, problems: [
            problem(.error, "p/b.yaml", 1, 1, "4"),
            problem(.error, "g.yaml", 10, 2, "3"),
            problem(.error, "g.yaml", 2, 9, "1"),
            problem(.warning, "g.yaml", 2, 9, "2"),
            problem(.error, "g.yaml", 0, 0, "0"),
        ])
        let lines = CheckReport.render(result: result, configPath: "g.yaml").stderr.split(separator: "\n")
        XCTAssertEqual(lines.map { $0.split(separator: " ").last! }, ["0", "1", "2", "3", "4"])
        XCTAssertEqual(lines[1], "g.yaml:2:9: error: 1")
    }
}
