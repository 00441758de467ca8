import Glibc

/// Which cookie an upstream's `Set-Cookie` sets, read as a browser reads it (RFC 6265bis §5.6),
/// so that the gateway can drop one that would set or clear its own session cookie (SPEC §3.2
/// "Upstream answers": session fixation, or a forced logout, by an upstream).
///
/// A browser takes the part before the first `;`; the name is what precedes its first `=`,
/// trimmed of spaces and tabs, compared byte for byte (cookie names are case-sensitive). A
/// pair without `=`, or with an empty name, makes a *nameless* cookie that the browser sends
/// back as its bare value — `Set-Cookie: =gatehouse_session=x` comes back as
/// `Cookie: gatehouse_session=x` — so such a value is read as a pair once more.
enum SetCookieName {
    /// True when `header` is `Set-Cookie` and `value` sets the cookie named `cookieName`.
    @inline(__always)
    static func isCookie(_ cookieName: String, setBy header: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>) -> Bool {
        guard HeaderRules.nameEquals(header, constant: "set-cookie") else { return false }
        return sets(cookieName, value: UnsafeRawBufferPointer(start: value, count: strlen(value)))
    }

    /// True when the `Set-Cookie` value `value` sets (or clears) the cookie named `cookieName`.
    static func sets(_ cookieName: String, value: UnsafeRawBufferPointer) -> Bool {
        var end = 0
        while end < value.count && value[end] != UInt8(ascii: ";") { end += 1 }
        let (name, rest) = split(value, 0, end)
        if name.lowerBound < name.upperBound { return equals(value, name, cookieName) }
        // Nameless: the browser sends `rest` (trimmed) back on its own.
        let (again, _) = split(value, rest.lowerBound, rest.upperBound)
        if again.lowerBound < again.upperBound { return equals(value, again, cookieName) }
        let whole = trimmed(value, rest.lowerBound, rest.upperBound)
        return equals(value, whole, cookieName)
    }

    /// The trimmed name of `value[start..<end]` (empty without `=`) and the range after `=`
    /// (all of it without `=`).
    private static func split(_ value: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (Range<Int>, Range<Int>) {
        var equals = start
        while equals < end && value[equals] != UInt8(ascii: "=") { equals += 1 }
        guard equals < end else { return (start..<start, start..<end) }
        return (trimmed(value, start, equals), equals + 1..<end)
    }

    private static func trimmed(_ value: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Range<Int> {
        var a = start, b = end
        while a < b && (value[a] == UInt8(ascii: " ") || value[a] == UInt8(ascii: "\t")) { a += 1 }
        while b > a && (value[b - 1] == UInt8(ascii: " ") || value[b - 1] == UInt8(ascii: "\t")) { b -= 1 }
        return a..<b
    }

    private static func equals(_ value: UnsafeRawBufferPointer, _ range: Range<Int>, _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { expected in
            guard expected.count == range.count, !range.isEmpty else { return false }
            var i = 0
            for k in range {
                if value[k] != expected[i] { return false }
                i += 1
            }
            return true
        }
    }
}
