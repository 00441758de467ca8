/// The users file (SPEC §2 `sessions.login.users_file`): htpasswd format as `htpasswd -B`
/// writes it, one `name:hash` per line.
///
/// Blank lines and lines starting with `#` are skipped; spaces and tabs around a line and a
/// trailing CR are ignored (as Apache's own reader does). A line is refused — reported with its
/// line number and left out — when it has no `:`, an empty name, a name with a control
/// character or longer than ``LoginRequest/maxUsernameBytes`` (it could never log in), a
/// second `:` (a name cannot contain `:`), a name already defined above (the first one is
/// kept), or a hash that ``PasswordScheme/identify(_:)`` does not accept.
public enum UsersFile {
    /// Users by name with their hashes, and every problem found, in line order.
    public static func parse(_ text: String, file: String) -> (users: [String: String], problems: [UsersFileProblem]) {
        var users: [String: String] = [:]
        var firstLine: [String: Int] = [:]
        var problems: [UsersFileProblem] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift: split on both so CRLF files count lines too.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = trimmed(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func problem(_ message: String, column: Int = 1) {
                problems.append(UsersFileProblem(file: file, line: lineNumber, column: column, message: message))
            }
            guard let colon = line.unicodeScalars.firstIndex(of: ":") else {
                problem("expected `name:hash`")
                continue
            }
            let name = String(line.unicodeScalars[..<colon])
            let hash = String(line.unicodeScalars[line.unicodeScalars.index(after: colon)...])
            let hashColumn = name.unicodeScalars.count + 2
            if name.isEmpty {
                problem("empty user name")
                continue
            }
            if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                problem("user name contains a control character")
                continue
            }
            if name.utf8.count > LoginRequest.maxUsernameBytes {
                problem("user name longer than \(LoginRequest.maxUsernameBytes) bytes (it could never log in)")
                continue
            }
            if hash.unicodeScalars.contains(":") {
                problem("more than one `:` on the line (a user name cannot contain `:`)", column: hashColumn)
                continue
            }
            if let first = firstLine[name] {
                problem("duplicate user \"\(name)\" (first defined on line \(first), which is kept)")
                continue
            }
            firstLine[name] = lineNumber
            if hash.isEmpty {
                problem("user \"\(name)\" has no password hash: \(PasswordScheme.acceptedSchemes)", column: hashColumn)
                continue
            }
            switch PasswordScheme.identify(hash) {
            case .success:
                users[name] = hash
            case .failure(let refusal):
                problem("user \"\(name)\": \(refusal.message)", column: hashColumn)
            }
        }
        return (users, problems)
    }

    private static func trimmed(_ line: Substring) -> Substring {
        var line = line
        while let last = line.last, last == " " || last == "\t" || last == "\r" { line.removeLast() }
        while let first = line.first, first == " " || first == "\t" { line.removeFirst() }
        return line
    }
}
