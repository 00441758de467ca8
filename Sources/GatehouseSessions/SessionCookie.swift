/// The gateway's session cookie (SPEC §2 `sessions.cookie`, §5.3, §7.1; RFC 6265): the
/// `Set-Cookie` values that issue and clear it, and reading it from — or removing it from — a
/// request's `Cookie` header.
///
/// Attributes are always written in this order: `Path`, `Domain` (when set), `HttpOnly`,
/// `Secure` (when on), `SameSite` (when set), `Max-Age`. Names and values are not checked
/// here: config validation keeps names to RFC 6265 tokens, and values are ``SessionID``s.
public struct SessionCookie: Sendable, Hashable {
    /// The `SameSite` attribute (RFC 6265bis §4.1.2.7).
    public enum SameSite: String, Sendable, Hashable {
        case strict = "Strict"
        case lax = "Lax"
        case none = "None"
    }

    /// Cookie name (`gatehouse_session`).
    public var name: String
    /// `Path` attribute (`/`).
    public var path: String
    /// `Domain` attribute, or nil for a host-only cookie (the default).
    public var domain: String?
    /// Whether `Secure` is written (default on).
    public var secure: Bool
    /// `SameSite`, or nil to leave it out.
    public var sameSite: SameSite?

    /// The cookie as configured; the defaults are SPEC §2's.
    public init(name: String = "gatehouse_session", path: String = "/", domain: String? = nil,
                secure: Bool = true, sameSite: SameSite? = .lax) {
        self.name = name
        self.path = path
        self.domain = domain
        self.secure = secure
        self.sameSite = sameSite
    }

    /// The `Set-Cookie` value that issues a session: `name=value; Path=/; HttpOnly; Secure;
    /// SameSite=Lax; Max-Age=<maxAge>`. `maxAge` is the seconds left until the absolute
    /// expiry (at most `absolute_timeout`), never below 0.
    public func setCookie(value: String, maxAge: Int64) -> String {
        render(value: value, maxAge: max(maxAge, 0))
    }

    /// The `Set-Cookie` value that clears it on logout: an empty value and `Max-Age=0`, with
    /// the same `Path` and `Domain` so that the browser replaces the right cookie.
    public func clearingSetCookie() -> String {
        render(value: "", maxAge: 0)
    }

    private func render(value: String, maxAge: Int64) -> String {
        var out = name + "=" + value + "; Path=" + path
        if let domain { out += "; Domain=" + domain }
        out += "; HttpOnly"
        if secure { out += "; Secure" }
        if let sameSite { out += "; SameSite=" + sameSite.rawValue }
        out += "; Max-Age=\(maxAge)"
        return out
    }

    /// The value of the first pair named ``name`` in a `Cookie` header (pairs split on `;`,
    /// spaces and tabs around them ignored, surrounding double quotes removed), or nil.
    /// Several `Cookie` lines must be joined with `; ` first.
    public func value(inCookieHeader header: String) -> String? {
        for pair in Self.pairs(header) {
            guard let (pairName, value) = Self.split(pair), isOurs(pairName) else { continue }
            if value.utf8.count >= 2, value.utf8.first == UInt8(ascii: "\""), value.utf8.last == UInt8(ascii: "\"") {
                return String(value.unicodeScalars.dropFirst().dropLast())
            }
            return String(value)
        }
        return nil
    }

    /// The `Cookie` header to forward upstream: every pair but those named ``name``, in their
    /// order, as sent, joined with `; `; the header itself when it holds none of ours. Nil when
    /// nothing is left (drop the header).
    public func strippingSelf(fromCookieHeader header: String) -> String? {
        var kept: [Substring] = []
        var removedAny = false
        for pair in Self.pairs(header) {
            if let (pairName, _) = Self.split(pair), isOurs(pairName) {
                removedAny = true
            } else {
                kept.append(pair)
            }
        }
        if kept.isEmpty { return nil }
        return removedAny ? kept.joined(separator: "; ") : header
    }

    /// Byte equality: cookie names are case-sensitive and not Unicode-normalized.
    private func isOurs(_ pairName: Substring) -> Bool {
        pairName.utf8.elementsEqual(name.utf8)
    }

    /// Non-empty `;`-separated pieces, trimmed of spaces and tabs. Splits on scalars, not
    /// Characters, so that a combining mark after `;` cannot glue two pairs together.
    private static func pairs(_ header: String) -> [Substring] {
        header.unicodeScalars.split(separator: ";").compactMap { piece in
            let trimmed = trim(Substring(piece))
            return trimmed.isEmpty ? nil : trimmed
        }
    }

    /// Name and value of `name=value`, both trimmed; nil without `=` (RFC 6265bis treats such
    /// a piece as a nameless value: never ours).
    private static func split(_ pair: Substring) -> (Substring, Substring)? {
        guard let equals = pair.unicodeScalars.firstIndex(of: "=") else { return nil }
        let name = Substring(pair.unicodeScalars[..<equals])
        let value = Substring(pair.unicodeScalars[pair.unicodeScalars.index(after: equals)...])
        return (trim(name), trim(value))
    }

    private static func trim(_ text: Substring) -> Substring {
        var scalars = text.unicodeScalars
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return Substring(scalars)
    }
}
