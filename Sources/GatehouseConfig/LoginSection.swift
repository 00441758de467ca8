import GatehouseCore
import GatehouseSessions

/// `sessions.login` (SPEC §2, §5.3): the login path, the users file (read and checked here, so
/// `check` reports every refused line at its own `FILE:LINE:COL`), roles and throttling.
struct LoginSection {
    static let defaultPath = "/login"

    /// The validated settings; nil when anything in the block is invalid.
    private(set) var settings: LoginSettings?
    /// The login path (the default when unset or invalid) and the node that wrote it.
    private(set) var path = defaultPath
    private(set) var pathNode: ConfigNode?
    /// Whether `path` was written and refused (then no other endpoint is compared with it).
    private(set) var pathIsInvalid = false

    /// `configDirectory` resolves a relative `users_file` for reading; `cwd` makes the stored
    /// path absolute.
    init(_ node: ConfigNode, configDirectory: String, cwd: String, _ diagnostics: Diagnostics) {
        guard let fields = node.fields(ConfigKeys.login, diagnostics) else { return }
        let errorsBefore = diagnostics.errorCount

        if let valueNode = fields["path"] {
            pathIsInvalid = true
            if let text = valueNode.string(diagnostics) {
                if let problem = EndpointPath.problem(text) {
                    diagnostics.error(valueNode, problem.message)
                } else {
                    (path, pathNode, pathIsInvalid) = (text, valueNode, false)
                }
            }
        }
        let users = Self.users(fields.required("users_file", diagnostics), configDirectory: configDirectory,
                               diagnostics)
        let roles = fields["roles"].map { Self.roles($0, users: users?.users, file: users?.written, diagnostics) } ?? [:]
        var maxFailures = 5
        if let valueNode = fields["max_failures"], let value = valueNode.int(diagnostics) {
            if value >= 1 {
                maxFailures = value
            } else {
                diagnostics.error(valueNode, "must be at least 1, got \(value)")
            }
        }
        var failureWindow: Int64 = 900
        if let seconds = fields["failure_window"]?.seconds(allowZero: false, diagnostics) { failureWindow = seconds }

        guard let users, diagnostics.errorCount == errorsBefore else { return }
        // One hash computation (the dummy hash for unknown users); load never runs on an event loop.
        settings = LoginSettings(path: path, verifier: PasswordVerifier(users: users.users), roles: roles,
                                 maxFailures: maxFailures, failureWindow: failureWindow,
                                 usersFile: ConfigPaths.absolute(users.written, relativeTo: configDirectory, cwd: cwd))
    }

    /// The users of `users_file` when the file was read and every line of it is valid, with the
    /// path as written. Each refused line is an error at the users file's own line and column
    /// (FILE as written in the config, SPEC §10).
    private static func users(_ node: ConfigNode?, configDirectory: String,
                              _ diagnostics: Diagnostics) -> (users: [String: String], written: String)? {
        guard let node, let written = node.string(diagnostics) else { return nil }
        guard !written.isEmpty else {
            diagnostics.error(node, "expected a file path, got \"\"")
            return nil
        }
        let text: String
        switch FileContents.text(ConfigPaths.join(configDirectory, written)) {
        case .failure(let error):
            diagnostics.error(node, "cannot read \(quoted(written)): \(error.message)")
            return nil
        case .success(let contents):
            text = contents
        }
        let parsed = UsersFile.parse(text, file: written)
        for problem in parsed.problems { diagnostics.error(problem.location, problem.message) }
        guard parsed.problems.isEmpty else { return nil }
        if parsed.users.isEmpty { diagnostics.warning(node, "no users in \(quoted(written)): nobody can log in") }
        return (parsed.users, written)
    }

    /// `roles`: user name -> list of roles (possibly empty). A name that is not in the users
    /// file is a warning; it is only judged when the file was read without problems.
    private static func roles(_ node: ConfigNode, users: [String: String]?, file: String?,
                              _ diagnostics: Diagnostics) -> [String: [String]] {
        guard let entries = node.entries(diagnostics) else { return [:] }
        var roles: [String: [String]] = [:]
        for entry in entries {
            let value = node.named(entry.key, entry.value)
            if let users, let file, users[entry.key] == nil {
                // User names are case-sensitive, as in every htpasswd reader.
                let sameButCase = users.keys.filter { $0.lowercased() == entry.key.lowercased() }.sorted().first
                let hint = sameButCase.map { " (user names are case-sensitive: did you mean \(quoted($0))?)" } ?? ""
                diagnostics.warning(entry.keyLocation, "\(value.path): no user \(quoted(entry.key)) in \(quoted(file)); "
                                        + "these roles are never used\(hint)")
            }
            guard let items = value.list(diagnostics) else { continue }
            var list: [String] = []
            for item in items {
                guard let role = item.string(diagnostics) else { continue }
                if let problem = roleProblem(role) {
                    diagnostics.error(item, problem)
                } else if !list.contains(role) {
                    list.append(role)
                }
            }
            roles[entry.key] = list
        }
        return roles
    }

    /// Roles travel to the upstream comma-separated in one header (`identity_headers.roles`).
    private static func roleProblem(_ role: String) -> String? {
        if role.isEmpty { return "expected a role, got \"\"" }
        if role.contains(",") { return "a role has no commas (the roles header joins roles with commas), got \(quoted(role))" }
        if role.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "a role has no control characters, got \(quoted(role))"
        }
        if role.first == " " || role.last == " " { return "a role has no leading or trailing spaces, got \(quoted(role))" }
        return nil
    }
}
