import GatehouseCore
import Yams

/// Reads a YAML file into a node tree. Read errors and YAML errors (syntax, duplicate keys)
/// become one problem each, at the position the parser gives. A file over ``maxFileBytes``,
/// and one that uses a construct ``YAMLGuard`` refuses, is not composed at all (SPEC §3.2).
enum YAMLSource {
    /// The largest config or policy file read: 4 MiB (a config with thousands of routes is
    /// well under 1 MiB).
    static let maxFileBytes = 4 << 20


    /// The document root of the file at `path`, shown as `file` in messages; an empty document
    /// is an empty mapping. nil when the file cannot be read or is not valid YAML.
    static func load(path: String, file: String, _ diagnostics: Diagnostics) -> ConfigNode? {
        let text: String
        switch FileContents.text(path, limit: maxFileBytes) {
        case .success(let contents): text = contents
        case .failure(let error):
            diagnostics.error(SourceLocation(file: file), "cannot read: \(error.message)")
            return nil
        }
        if let refused = YAMLGuard.problem(in: text) {
            diagnostics.error(SourceLocation(file: file, line: refused.line, column: refused.column), refused.message)
            return nil
        }
        do {
            let root = try Yams.compose(yaml: text) ?? Node([(Node, Node)]())
            let node = ConfigNode(root: root, file: file)
            return node.isNull ? ConfigNode(root: Node([(Node, Node)]()), file: file) : node
        } catch let error as YamlError {
            let (line, column, message) = describe(error, in: text)
            diagnostics.error(SourceLocation(file: file, line: line, column: column), message)
        } catch {
            diagnostics.error(SourceLocation(file: file), "invalid YAML: \(error)")
        }
        return nil
    }

    /// Line, column and message for a Yams error.
    private static func describe(_ error: YamlError, in text: String) -> (Int, Int, String) {
        func withContext(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return "invalid YAML: \(problem)" }
            return "invalid YAML: \(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return (mark.line, mark.column, withContext(problem, context))
        case let .reader(problem, offset, _, _):
            let (line, column) = offset.map { position(ofCharacter: $0, in: text) } ?? (0, 0)
            return (line, column, "invalid YAML: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, context):
            let key = duplicates.first ?? ""
            let first = context.mark
            if let later = DuplicateKey.laterOccurrence(of: key, firstLine: first.line, firstColumn: first.column,
                                                        in: text) {
                return (later.line, later.column,
                        "duplicate key \(quoted(key)) (first at line \(first.line), column \(first.column))")
            }
            return (first.line, first.column, "duplicate key \(quoted(key)): this mapping repeats it further on")
        default:
            return (0, 0, "invalid YAML: \(error)")
        }
    }

    /// 1-based line and column (in Unicode scalars, as libyaml counts) of a character offset.
    private static func position(ofCharacter offset: Int, in text: String) -> (Int, Int) {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" { line += 1; column = 1 } else { column += character.unicodeScalars.count }
        }
        return (line, column)
    }
}

/// Yams reports a duplicate key at its first occurrence; the operator needs the repeated one.
/// For block mappings (nearly every config) it is the next line with the same indentation that
/// starts with the same key, before the mapping ends. Flow mappings (`{a: 1, a: 2}`) are not
/// searched: the caller then falls back to the first occurrence.
enum DuplicateKey {
    static func laterOccurrence(of key: String, firstLine: Int, firstColumn: Int,
                                in text: String) -> (line: Int, column: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let indent = firstColumn - 1
        guard firstLine >= 1, indent >= 0, firstLine < lines.count else { return nil }
        let spellings = [key, "\"\(key)\"", "'\(key)'"]
        for index in firstLine..<lines.count {
            let line = lines[index].hasSuffix("\r") ? lines[index].dropLast() : lines[index]
            let content = line.drop { $0 == " " }
            if content.isEmpty || content.hasPrefix("#") { continue }
            let leading = line.count - content.count
            if leading < indent { return nil }
            guard leading == indent else { continue }
            for spelling in spellings where content.hasPrefix(spelling) {
                let rest = content.dropFirst(spelling.count).drop { $0 == " " }
                if rest.hasPrefix(":") && (rest.count == 1 || rest.dropFirst().first == " ") {
                    return (index + 1, firstColumn)
                }
            }
        }
        return nil
    }
}
