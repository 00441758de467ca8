/// A JSON value (RFC 8259) as the JWT layer needs it: token headers and claims, JWKS documents,
/// and the expected values of `require.claims`.
///
/// Numbers keep integer literals exact (``JSONNumber``), so large ids compare correctly and
/// `7` equals `7.0`. Objects keep their members in document order (``JSONObject``).
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The string, when this is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The object, when this is one.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The member `name` when this is an object that has one.
    public subscript(name: String) -> JSONValue? {
        if case .object(let object) = self { return object[name] }
        return nil
    }

    /// The value at a dotted claim path such as `realm_access.roles` (SPEC §2 `roles_claim`,
    /// `require.claims`). A member whose own name contains dots wins: at every level the whole
    /// remaining path is tried as one member name first, then ever shorter dotted prefixes.
    public func value(atPath path: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        if let whole = object[path] { return whole }
        var end = path.endIndex
        while let dot = path[..<end].lastIndex(of: ".") {
            let rest = path[path.index(after: dot)...]
            if !rest.isEmpty, let child = object[String(path[..<dot])], let found = child.value(atPath: String(rest)) {
                return found
            }
            end = dot
        }
        return nil
    }
}

/// A JSON number: the exact integer when the literal was an integer that fits in 64 bits,
/// otherwise a double. Equality is numeric (`7 == 7.0`).
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    private enum Storage: Sendable { case integer(Int64), double(Double) }
    private let storage: Storage

    public init(_ value: Int64) { storage = .integer(value) }
    public init(_ value: Int) { storage = .integer(Int64(value)) }
    /// Integral doubles that fit in `Int64` are stored as integers, so equality stays exact.
    public init(_ value: Double) {
        if let exact = Int64(exactly: value) { storage = .integer(exact) } else { storage = .double(value) }
    }

    /// The exact integer value, when the number is one.
    public var int64Value: Int64? {
        if case .integer(let value) = storage { return value }
        return nil
    }

    /// The value as a double (large integers may round).
    public var doubleValue: Double {
        switch storage {
        case .integer(let value): return Double(value)
        case .double(let value): return value
        }
    }

    /// The smallest integer not below the value, clamped to ±2^52 (about 142 million years of
    /// seconds): what NumericDate comparisons against a whole-second clock need.
    var ceilingSeconds: Int64 {
        let limit: Int64 = 1 << 52
        switch storage {
        case .integer(let value): return min(max(value, -limit), limit)
        case .double(let value): return Int64(min(max(value.rounded(.up), -Double(limit)), Double(limit)))
        }
    }

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.integer(let a), .integer(let b)): return a == b
        case (.double(let a), .double(let b)): return a == b
        // A double is only stored when it is not an integral Int64, so it never equals an integer.
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch storage {
        case .integer(let value): hasher.combine(value)
        case .double(let value): hasher.combine(value)
        }
    }

    public var description: String {
        switch storage {
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        }
    }
}

/// A JSON object: members in document order, looked up by a linear scan (claims sets and JWT
/// headers are small, and building a dictionary per token costs more than it saves).
/// Equality ignores member order.
public struct JSONObject: Sendable, Hashable {
    public let members: [(name: String, value: JSONValue)]

    public init(_ members: [(name: String, value: JSONValue)]) { self.members = members }

    public subscript(name: String) -> JSONValue? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    public var count: Int { members.count }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members where rhs[member.name] != member.value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        var combined = 0
        for member in members {
            var inner = Hasher()
            inner.combine(member.name)
            inner.combine(member.value)
            combined ^= inner.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral,
    ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .number(JSONNumber(value)) }
    public init(floatLiteral value: Double) { self = .number(JSONNumber(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (name: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}
