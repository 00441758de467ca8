/// Read access to a request's header fields, all the decision pipeline needs of them: the
/// server's evhttp list in production (no copy), ``HeaderPairs`` in tests, `explain` and
/// `gatehouse test`. Names are compared ignoring ASCII case (RFC 9110 §5.1).
///
/// The pipeline takes it as a generic (`some HeaderSource`), never as an existential, and names
/// are `StaticString`s: the server hands a literal's NUL-terminated bytes to evhttp as they are
/// (a short `String` would have to be copied out to get its terminator, on every lookup).
public protocol HeaderSource {
    /// The value of the first field named `name`, or nil when there is none.
    func first(_ name: StaticString) -> String?
    /// Every value of the field `lowercasedName` joined with `separator` (RFC 9110 §5.3), or
    /// nil when there is none. The name is given in lowercase.
    func joined(_ lowercasedName: StaticString, separator: StaticString) -> String?
    /// The value of the field `lowercasedName` when it is present exactly once; nil when it is
    /// absent or repeated (forward auth's description headers, SPEC §11). The name is given in
    /// lowercase. A default implementation reads ``joined(_:separator:)``.
    func single(_ lowercasedName: StaticString) -> String?
    /// The first `Authorization` value: ``first(_:)``'s. A server may answer it from what the
    /// connection sent before, when the bytes are the same (a client presents one token on
    /// request after request).
    func authorization() -> String?
}

extension HeaderSource {
    public func authorization() -> String? { first("Authorization") }

    public func single(_ lowercasedName: StaticString) -> String? {
        // Repeats are joined with a newline, which no accepted header value holds (the raw head
        // check refuses control bytes).
        guard let value = joined(lowercasedName, separator: "\n"), !value.utf8.contains(0x0A) else { return nil }
        return value
    }
}

/// Header fields as a plain list of (name, value), in order.
public struct HeaderPairs: HeaderSource, Sendable {
    public var pairs: [(String, String)]

    public init(_ pairs: [(String, String)]) { self.pairs = pairs }

    public func first(_ name: StaticString) -> String? {
        pairs.first { Self.sameName($0.0, name.description) }?.1
    }

    public func joined(_ lowercasedName: StaticString, separator: StaticString) -> String? {
        let values = pairs.filter { Self.sameName($0.0, lowercasedName.description) }.map(\.1)
        return values.isEmpty ? nil : values.joined(separator: separator.description)
    }

    /// Equal ignoring ASCII case only (no Unicode case mapping: `K` (Kelvin) is not `k`).
    static func sameName(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return zip(a.utf8, b.utf8).allSatisfy { x, y in
            let lx = x >= 65 && x <= 90 ? x | 0x20 : x
            let ly = y >= 65 && y <= 90 ? y | 0x20 : y
            return lx == ly
        }
    }
}
