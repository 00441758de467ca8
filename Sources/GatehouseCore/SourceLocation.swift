/// A place in a config or policy file, for `check` output (`FILE:LINE:COL`) and warnings.
/// `file` is the path as the operator wrote it (or relative to the config's folder for files
/// matched by a policy glob); line and column are 1-based, 0 when unknown.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int = 0, column: Int = 0) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}
