import GatehouseCore

/// Collects every problem found while loading one configuration (the config file and the
/// policy files it names). Loading never stops at the first problem (STYLE habit 3).
final class Diagnostics {
    private(set) var problems: [ConfigProblem] = []

    var hasErrors: Bool { problems.contains { $0.severity == .error } }

    /// How many errors so far: a section compares it before and after reading itself.
    var errorCount: Int { problems.count { $0.severity == .error } }

    func error(_ location: SourceLocation, _ message: String) {
        problems.append(ConfigProblem(.error, at: location, message))
    }

    func warning(_ location: SourceLocation, _ message: String) {
        problems.append(ConfigProblem(.warning, at: location, message))
    }

    /// An error about the value at `node`, prefixed with its key path.
    func error(_ node: ConfigNode, _ message: String) {
        error(node.location, "\(node.path): \(message)")
    }

    /// A warning about the value at `node`, prefixed with its key path.
    func warning(_ node: ConfigNode, _ message: String) {
        warning(node.location, "\(node.path): \(message)")
    }
}

/// A value for a message: quoted, with quotes, backslashes and control characters escaped so
/// that every problem stays on one line.
func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
