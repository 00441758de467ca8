/// A compact text form of a record, for stores that keep strings (Redis):
///
///     v=1&id=<idHash>&sub=<subject>&c=<createdAt>&s=<lastSeen>&x=<absoluteExpiry>&rv=<0|1>&role=<role>&role=<role>
///
/// Every text value is percent-encoded byte by byte (everything but `A-Z a-z 0-9 - . _ ~`), so
/// no subject or role text — `&`, `=`, `%`, newlines, NUL, non-UTF-8 tricks — can forge or
/// break a field. Roles are repeated `role=` fields in order (an empty role name survives).
/// Decoding refuses a wrong version, a missing or repeated field, a bad escape, text that is
/// not UTF-8 and non-decimal numbers; fields it does not know are skipped, so a newer writer
/// can add some.
extension SessionRecord {
    /// The version this code writes and reads.
    public static let encodingVersion = "1"

    /// The text form (one line, ASCII).
    public var encoded: String {
        var fields = [
            "v=" + Self.encodingVersion,
            "id=" + PercentEncoding.encode(idHash),
            "sub=" + PercentEncoding.encode(subject),
            "c=\(createdAt)",
            "s=\(lastSeen)",
            "x=\(absoluteExpiry)",
            "rv=" + (revoked ? "1" : "0"),
        ]
        // Only when set: a record without it reads the same in older versions (which ignore
        // unknown fields and would then treat an OIDC session as a password one — and refuse
        // it, its subject not being in the users file: safe).
        if oidc { fields.append("o=1") }
        fields.reserveCapacity(fields.count + roles.count)
        for role in roles { fields.append("role=" + PercentEncoding.encode(role)) }
        return fields.joined(separator: "&")
    }

    /// Reads ``encoded`` text back; nil when it is not exactly such a text.
    public init?(encoded text: String) {
        var single: [String: String] = [:]
        var roles: [String] = []
        for field in text.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
            guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let key = String(decoding: field[..<equals], as: UTF8.self)
            guard let bytes = PercentEncoding.decode(field[field.index(after: equals)...], plusAsSpace: false),
                  let value = String(validating: bytes, as: UTF8.self) else { return nil }
            switch key {
            case "role":
                roles.append(value)
            case "v", "id", "sub", "c", "s", "x", "rv", "o":
                guard single.updateValue(value, forKey: key) == nil else { return nil }
            default:
                continue
            }
        }
        guard single["v"] == Self.encodingVersion,
              let idHash = single["id"], !idHash.isEmpty, let subject = single["sub"],
              let createdAt = single["c"].flatMap(Self.decimal), let lastSeen = single["s"].flatMap(Self.decimal),
              let absoluteExpiry = single["x"].flatMap(Self.decimal),
              let revoked = single["rv"], revoked == "0" || revoked == "1" else { return nil }
        self.init(idHash: idHash, subject: subject, roles: roles, createdAt: createdAt, lastSeen: lastSeen,
                  absoluteExpiry: absoluteExpiry, revoked: revoked == "1", oidc: single["o"] == "1")
    }

    /// `-?[0-9]+` that fits an Int64.
    private static func decimal(_ text: String) -> Int64? {
        let digits = text.hasPrefix("-") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }
}
