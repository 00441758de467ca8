#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatehouseCore

/// `policy_files` (SPEC §2): globs relative to the config file's directory, expanded in list
/// order, the matches of one glob sorted by name. Each file holds `routes: [...]` only.
enum PolicyFiles {
    /// One file to load: `path` to open, `file` as messages show it (relative to the config's
    /// directory, SPEC §10).
    struct Match: Equatable {
        var path: String
        var file: String
    }

    /// The files in load order; a file matched by several globs is loaded once, at its first place.
    static func expand(_ node: ConfigNode?, configDirectory: String, _ diagnostics: Diagnostics) -> [Match] {
        guard let node, let items = node.list(diagnostics) else { return [] }
        var matches: [Match] = []
        var seen: Set<String> = []
        for item in items {
            guard let pattern = item.string(diagnostics) else { continue }
            guard !pattern.isEmpty else {
                diagnostics.error(item, "expected a file name or glob, got \"\"")
                continue
            }
            let fullPattern = pattern.hasPrefix("/") ? pattern : ConfigPaths.join(escaped(configDirectory), pattern)
            switch expandGlob(fullPattern) {
            case .failure(let error):
                diagnostics.error(item, "cannot expand \(quoted(pattern)): \(error.message)")
            case .success(let paths) where paths.isEmpty:
                diagnostics.warning(item, "\(quoted(pattern)) matches no file")
            case .success(let paths):
                for path in paths where seen.insert(path).inserted {
                    matches.append(Match(path: path, file: ConfigPaths.relative(path, to: configDirectory)))
                }
            }
        }
        return matches
    }

    /// Loads one policy file's routes into `routes`.
    static func load(_ match: Match, into routes: RouteCollector, _ diagnostics: Diagnostics) {
        guard let root = YAMLSource.load(path: match.path, file: match.file, diagnostics),
              let fields = root.fields(ConfigKeys.policyFile, diagnostics) else { return }
        if let list = fields["routes"] {
            routes.read(list)
        } else if root.node.mapping?.keys.allSatisfy({ $0.scalar?.string == "routes" }) ?? true {
            // An empty file (or `routes:` alone) may be a placeholder; anything else was reported.
            diagnostics.warning(root.location, "no routes in this policy file")
        }
    }

    /// Regular files matching `pattern`, sorted bytewise (not by locale) so the order is the
    /// same on every machine. Directories are skipped.
    private static func expandGlob(_ pattern: String) -> Result<[String], SyntaxError> {
        var result = glob_t()
        defer { globfree(&result) }
        let status = glob(pattern, GLOB_MARK, nil, &result)
        if status == GLOB_NOMATCH { return .success([]) }
        guard status == 0 else {
            return .failure(SyntaxError(status == GLOB_ABORTED ? "a directory cannot be read" : "glob failed (\(status))"))
        }
        var paths: [String] = []
        for index in 0..<Int(result.gl_pathc) {
            guard let cPath = result.gl_pathv[index] else { continue }
            let path = String(cString: cPath)
            if !path.hasSuffix("/") { paths.append(path) }
        }
        return .success(paths.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
    }

    /// The config's directory with glob metacharacters escaped: only the operator's pattern
    /// is a pattern.
    private static func escaped(_ directory: String) -> String {
        var out = ""
        for character in directory {
            if "*?[]\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
