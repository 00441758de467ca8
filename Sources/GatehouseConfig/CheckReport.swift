/// The output of `gatehouse check` (SPEC §10), as a pure function of a load result: each
/// problem on stderr as `FILE:LINE:COL: error: message` (or `warning:`), sorted by file, line
/// and column, then one verdict line on stdout.
public enum CheckReport {
    /// `configPath` as given on the command line. Exit code 0 when there are no errors
    /// (warnings allowed), else 1.
    public static func render(result: ConfigLoadResult, configPath: String) -> (stderr: String, stdout: String, exitCode: Int32) {
        // Sorting the indices keeps problems at the same position in the order they were found.
        let sorted = result.problems.enumerated().sorted { lhs, rhs in
            let a = lhs.element.location, b = rhs.element.location
            if a.file != b.file { return a.file < b.file }
            if a.line != b.line { return a.line < b.line }
            if a.column != b.column { return a.column < b.column }
            return lhs.offset < rhs.offset
        }
        let stderr = sorted.map { "\($0.element)\n" }.joined()
        let errors = result.errors.count
        let stdout = errors == 0
            ? "configuration \(configPath) is valid\n"
            : "configuration \(configPath) has \(errors) \(errors == 1 ? "error" : "errors")\n"
        return (stderr, stdout, errors == 0 ? 0 : 1)
    }
}
