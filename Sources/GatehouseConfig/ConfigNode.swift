import GatehouseCore
import Yams

/// One YAML node and what a message about it needs: its key path as the operator reads it
/// (`upstreams.api.targets[0]`), its schema path with names and indexes erased
/// (`upstreams.*.targets[]`, the key that ``ConfigKeys`` tables use) and its position.
struct ConfigNode {
    let node: Node
    let path: String
    let schema: String
    let location: SourceLocation

    /// The document root of `file` (FILE as the messages show it).
    init(root: Node, file: String) {
        self.init(node: root, path: "", schema: "", file: file)
    }

    private init(node: Node, path: String, schema: String, file: String) {
        self.node = node
        self.path = path
        self.schema = schema
        self.location = SourceLocation(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
    }

    /// The value of a fixed key (`server` -> `server.listen`).
    func child(_ key: String, _ value: Node) -> ConfigNode {
        ConfigNode(node: value, path: join(path, key), schema: join(schema, key), file: location.file)
    }

    /// The value of an operator-chosen name (`upstreams` -> `upstreams.api`, schema `upstreams.*`).
    func named(_ name: String, _ value: Node) -> ConfigNode {
        ConfigNode(node: value, path: join(path, name), schema: join(schema, "*"), file: location.file)
    }

    /// A list item (`routes` -> `routes[2]`, schema `routes[]`).
    func item(_ index: Int, _ value: Node) -> ConfigNode {
        ConfigNode(node: value, path: "\(path)[\(index)]", schema: "\(schema)[]", file: location.file)
    }

    private func join(_ base: String, _ key: String) -> String { base.isEmpty ? key : "\(base).\(key)" }

    /// True for `~`, `null` and an empty value: the key counts as not set.
    var isNull: Bool {
        guard let scalar = node.scalar else { return false }
        return scalar.style == .plain && node.tagName == .null
    }

    /// What the node is, for `got ...` in messages.
    var described: String {
        switch node {
        case .scalar(let scalar): return isNull ? "null" : quoted(scalar.string)
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        }
    }
}

// MARK: - Scalars

extension ConfigNode {
    /// Any non-null scalar, as written.
    func string(_ diagnostics: Diagnostics) -> String? {
        guard let scalar = node.scalar, !isNull else {
            diagnostics.error(self, "expected a string, got \(described)")
            return nil
        }
        return scalar.string
    }

    func int(_ diagnostics: Diagnostics) -> Int? {
        guard node.scalar != nil, node.tagName == .int, let value = node.int else {
            diagnostics.error(self, "expected an integer, got \(described)")
            return nil
        }
        return value
    }

    func bool(_ diagnostics: Diagnostics) -> Bool? {
        guard node.scalar != nil, node.tagName == .bool, let value = node.bool else {
            diagnostics.error(self, "expected true or false, got \(described)")
            return nil
        }
        return value
    }

    /// A positive duration (`500ms`, `30s`, `15m`, `12h`) in milliseconds.
    func duration(_ diagnostics: Diagnostics) -> Int64? {
        guard let text = node.scalar?.string, !isNull, let ms = Units.milliseconds(text) else {
            diagnostics.error(self, "expected a duration like 500ms, 30s, 15m, 12h, got \(described)")
            return nil
        }
        guard ms > 0 else {
            diagnostics.error(self, "must be greater than 0, got \(described)")
            return nil
        }
        return ms
    }

    /// A duration in whole seconds, for values kept in seconds (JWT times, `Access-Control-Max-Age`);
    /// `0s` is allowed when `allowZero`.
    func seconds(allowZero: Bool, _ diagnostics: Diagnostics) -> Int64? {
        guard let text = node.scalar?.string, !isNull, let ms = Units.milliseconds(text) else {
            diagnostics.error(self, "expected a duration like 30s, 15m, 12h, got \(described)")
            return nil
        }
        guard ms > 0 || allowZero else {
            diagnostics.error(self, "must be greater than 0, got \(described)")
            return nil
        }
        guard ms % 1000 == 0 else {
            diagnostics.error(self, "must be whole seconds, got \(described)")
            return nil
        }
        return ms / 1000
    }

    /// A size (`16KiB`, `10MiB`, or a byte count) in bytes.
    func size(_ diagnostics: Diagnostics) -> Int? {
        guard let text = node.scalar?.string, !isNull, let bytes = Units.bytes(text) else {
            diagnostics.error(self, "expected a size like 16KiB, 10MiB or a byte count, got \(described)")
            return nil
        }
        return bytes
    }

    /// One of an enumeration's raw values; the message lists them all.
    func oneOf<Value: RawRepresentable & CaseIterable>(_ type: Value.Type, _ diagnostics: Diagnostics) -> Value?
    where Value.RawValue == String {
        if let text = node.scalar?.string, !isNull, let value = Value(rawValue: text) { return value }
        let valid = Value.allCases.map(\.rawValue).joined(separator: ", ")
        diagnostics.error(self, "expected one of \(valid), got \(described)")
        return nil
    }
}

// MARK: - Collections

extension ConfigNode {
    /// The items of a list.
    func list(_ diagnostics: Diagnostics) -> [ConfigNode]? {
        guard let sequence = node.sequence else {
            diagnostics.error(self, "expected a list, got \(described)")
            return nil
        }
        return sequence.enumerated().map { item($0.offset, $0.element) }
    }

    /// The items of a non-empty list of non-empty strings, each with its node; `what` names
    /// the items in the message for an empty list. Bad items are reported and left out.
    func stringList(of what: String, _ diagnostics: Diagnostics) -> [(value: String, node: ConfigNode)]? {
        guard let items = list(diagnostics) else { return nil }
        guard !items.isEmpty else {
            diagnostics.error(self, "at least one \(what) is needed")
            return nil
        }
        return items.compactMap { item in
            guard let text = item.string(diagnostics) else { return nil }
            guard !text.isEmpty else {
                diagnostics.error(item, "expected a \(what), got \"\"")
                return nil
            }
            return (text, item)
        }
    }

    /// The entries of a mapping in file order. Keys that are not scalars are reported and left
    /// out. (Merge keys never get here: ``YAMLGuard`` refuses them before the file is composed.)
    func entries(_ diagnostics: Diagnostics) -> [(key: String, keyLocation: SourceLocation, value: Node)]? {
        guard let mapping = node.mapping else {
            let what = path.isEmpty ? "the file" : path
            diagnostics.error(location, "\(what): expected a mapping, got \(described)")
            return nil
        }
        var entries: [(key: String, keyLocation: SourceLocation, value: Node)] = []
        for (key, value) in mapping {
            let keyNode = child("<key>", key)
            guard let name = key.scalar?.string else {
                diagnostics.error(keyNode.location, "\(path.isEmpty ? "the file" : path): keys must be strings, got \(keyNode.described)")
                continue
            }
            entries.append((name, keyNode.location, value))
        }
        return entries
    }

    /// The fields of a mapping with a fixed key set. Unknown keys and keys that are not built yet
    /// (``ConfigKeys/notYetSupported``) are reported here, at the key.
    func fields(_ known: [String], _ diagnostics: Diagnostics) -> Fields? {
        guard let entries = entries(diagnostics) else { return nil }
        var values: [String: ConfigNode] = [:]
        for entry in entries {
            let value = child(entry.key, entry.value)
            if ConfigKeys.notYetSupported.contains(value.schema) {
                diagnostics.error(entry.keyLocation, "\(value.path): not supported yet")
            } else if !known.contains(entry.key) {
                diagnostics.error(entry.keyLocation,
                                  "\(value.path): unknown key; valid keys: \(known.joined(separator: ", "))")
            } else {
                values[entry.key] = value
            }
        }
        return Fields(owner: self, values: values)
    }
}

/// The checked fields of one mapping.
struct Fields {
    let owner: ConfigNode
    fileprivate let values: [String: ConfigNode]

    /// The value of `key`; nil when absent or null (a null value means "not set": the default applies).
    subscript(key: String) -> ConfigNode? {
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    /// True when `key` is written, also with a null value (`route: null` in a policy test says
    /// "no route", which differs from not saying anything about the route).
    func isWritten(_ key: String) -> Bool { values[key] != nil }

    /// The value of a required key; reports it missing otherwise.
    func required(_ key: String, _ diagnostics: Diagnostics) -> ConfigNode? {
        if let value = self[key] { return value }
        let path = owner.path.isEmpty ? key : "\(owner.path).\(key)"
        diagnostics.error(values[key]?.location ?? owner.location, "\(path): required key is missing")
        return nil
    }
}

extension Node {
    /// The resolved tag (`!!int`, `!!bool`, `!!null`, ...); Yams keeps `Tag.name` internal.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
