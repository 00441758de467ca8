import CYaml

/// The YAML features a config never needs and an attacker can abuse, refused before the file
/// is composed (SPEC §3.2 Config files).
///
/// Yams composes the whole document before anything can look at it, and both of its expensive
/// steps are reachable from a few hundred bytes: aliases share a node that its duplicate-key
/// check hashes again at every use (nested aliases multiply), and merge keys (`<<`) copy
/// mappings into mappings. So the guard reads the file first with libyaml's event parser —
/// the same parser Yams uses, so quotes, comments, block scalars and flow collections are read
/// exactly as Yams will read them, in time linear in the file's length — and refuses:
/// - an anchor (`&name`) and an alias (`*name`): refusing both is simpler and safer than
///   capping an expansion, and no gatehouse config needs them;
/// - a merge key (`<<`), in any quoting or with the `!!merge` tag;
/// - a key that is a list or a mapping (`? [a, b]`): config keys are names;
/// - nesting deeper than ``maxDepth`` (a real config nests about 7 deep; Yams composes
///   recursively).
///
/// A syntax error is not reported here: the file then goes to Yams, which stops at the same
/// event (it parses with the same libyaml) and reports it as it always has.
public enum YAMLGuard {
    /// Deepest nesting of lists and mappings accepted.
    public static let maxDepth = 64

    /// The first refused construct, with its 1-based line and column; nil when there is none
    /// (or when the text is not valid YAML, which Yams reports).
    public struct Problem: Equatable, Sendable {
        public var line: Int
        public var column: Int
        public var message: String
    }

    public static func problem(in text: String) -> Problem? {
        var copy = text
        return copy.withUTF8 { problem(in: $0) }
    }

    public static func problem(in bytes: UnsafeBufferPointer<UInt8>) -> Problem? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }  // an empty document
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, base, bytes.count)
        var walk = Walk()
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { return nil }
            if let message = walk.step(event) {
                return Problem(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1,
                               message: message)
            }
        }
    }

    static let mergeTag = "tag:yaml.org,2002:merge"
}

/// Where the event stream is: the open lists and mappings, and for each mapping whether its
/// next node is a key.
private struct Walk {
    private enum Frame { case sequence, mapping(expectsKey: Bool) }
    private var frames: [Frame] = []

    /// The refusal for this event, or nil.
    mutating func step(_ event: yaml_event_t) -> String? {
        switch event.type {
        case YAML_ALIAS_EVENT:
            return "YAML alias \(quoted("*" + text(event.data.alias.anchor))) is not allowed in a gatehouse config: "
                + "write the value out (aliases and merge keys are refused, SPEC §3.2)"
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            if let anchor = scalar.anchor { return anchorMessage(anchor) }
            if isKey, scalar.length == 2, scalar.value[0] == UInt8(ascii: "<"), scalar.value[1] == UInt8(ascii: "<") {
                return mergeMessage
            }
            if let tag = scalar.tag, text(tag) == YAMLGuard.mergeTag { return mergeMessage }
            nodeEnded()
        case YAML_SEQUENCE_START_EVENT:
            if let anchor = event.data.sequence_start.anchor { return anchorMessage(anchor) }
            return open(.sequence)
        case YAML_MAPPING_START_EVENT:
            if let anchor = event.data.mapping_start.anchor { return anchorMessage(anchor) }
            return open(.mapping(expectsKey: true))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            _ = frames.popLast()
            nodeEnded()
        default:
            break
        }
        return nil
    }

    private var isKey: Bool {
        if case .mapping(expectsKey: true) = frames.last { return true }
        return false
    }

    private mutating func open(_ frame: Frame) -> String? {
        if isKey { return "a key must be a single value, not a list or mapping" }
        guard frames.count < YAMLGuard.maxDepth else {
            return "lists and mappings nested more than \(YAMLGuard.maxDepth) deep"
        }
        frames.append(frame)
        return nil
    }

    /// A whole node (scalar, or a list or mapping at its end) was read: in a mapping, keys and
    /// values alternate.
    private mutating func nodeEnded() {
        if case .mapping(let expectsKey) = frames.last { frames[frames.count - 1] = .mapping(expectsKey: !expectsKey) }
    }

    private var mergeMessage: String {
        "YAML merge key \"<<\" is not allowed in a gatehouse config: write the keys out "
            + "(aliases and merge keys are refused, SPEC §3.2)"
    }

    private func anchorMessage(_ anchor: UnsafeMutablePointer<UInt8>) -> String {
        "YAML anchor \(quoted("&" + text(anchor))) is not allowed in a gatehouse config: "
            + "write the value out (aliases and merge keys are refused, SPEC §3.2)"
    }

    private func text(_ pointer: UnsafeMutablePointer<UInt8>) -> String {
        String(String(cString: pointer).prefix(64))
    }
}
