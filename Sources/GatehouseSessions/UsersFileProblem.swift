import GatehouseCore

/// One thing wrong with a users file: where, and what. `gatehouse check` prints it as
/// `FILE:LINE:COL: error: message`; the offending line is left out of the users.
public struct UsersFileProblem: Sendable, Hashable, CustomStringConvertible {
    /// The users file as the config names it.
    public let file: String
    /// 1-based line number.
    public let line: Int
    /// 1-based column: 1 for a problem with the user name, the hash's first column for a
    /// problem with the hash.
    public let column: Int
    /// What is wrong, without the hash itself.
    public let message: String

    /// Makes a problem.
    public init(file: String, line: Int, column: Int = 1, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// The place, for `check`'s report.
    public var location: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    /// `FILE:LINE:COL: message`.
    public var description: String { "\(location): \(message)" }
}
