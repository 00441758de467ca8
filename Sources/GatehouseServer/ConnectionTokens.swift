import Glibc

/// The header names that a message's `Connection` headers list (RFC 9110 §7.6.1): hop-by-hop
/// like the fixed ones, so a proxy removes them before forwarding.
///
/// The tokens are parsed once per message, lowercased into one byte array, and looked up per
/// header in time that does not grow with their number: a header whose name length no token
/// has is passed at once (a 64-bit mask of lengths), else its name is hashed once and only
/// tokens of the same hash are compared byte-wise. Removing them costs time linear in the head,
/// where comparing every header with every token (one String each) cost ~100 ms of loop time
/// for 4,000 tokens and 4,000 headers. More than `limit` tokens make a request a 400
/// (SPEC §3.2) and a response a bad answer: only the first `limit` are kept.
struct ConnectionTokens {
    static let limit = 64

    private var bytes: [UInt8] = []
    private var entries: [(hash: UInt64, offset: Int, length: Int)] = []
    /// Bit n set when a token of length n is kept (n ≥ 63 shares bit 63).
    private var lengths: UInt64 = 0
    /// Non-empty list elements seen, counted past the limit.
    private(set) var count = 0

    /// More than `limit` tokens were listed.
    var tooMany: Bool { count > ConnectionTokens.limit }

    init() {}

    /// The tokens of every `Connection` header in `headers`.
    init(_ headers: HeaderList) {
        headers.forEach { name, value in
            if HeaderRules.nameEquals(name, constant: "connection") { add(value) }
        }
    }

    /// Adds the tokens of one `Connection` value (a comma-separated list; empty elements and
    /// optional whitespace around each are allowed, RFC 9110 §5.6.1).
    mutating func add(_ value: UnsafePointer<CChar>) {
        add(UnsafeRawBufferPointer(start: value, count: strlen(value)))
    }

    mutating func add(_ value: String) {
        var value = value
        value.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    mutating func add(_ value: UnsafeRawBufferPointer) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start, last = end
            while first < last && (value[first] == 0x20 || value[first] == 0x09) { first += 1 }
            while last > first && (value[last - 1] == 0x20 || value[last - 1] == 0x09) { last -= 1 }
            if last > first { keep(UnsafeRawBufferPointer(rebasing: value[first..<last])) }
            start = end + 1
        }
    }

    private mutating func keep(_ token: UnsafeRawBufferPointer) {
        count += 1
        guard count <= ConnectionTokens.limit else { return }
        // `close` is a connection option, and `keep-alive` is dropped by name anyway: the usual
        // values cost nothing per header.
        if ConnectionTokens.equals(token, "close") || ConnectionTokens.equals(token, "keep-alive") { return }
        let offset = bytes.count
        var hash = ConnectionTokens.hashSeed
        for c in token {
            let lower = ConnectionTokens.lowercase(c)
            bytes.append(lower)
            hash = (hash ^ UInt64(lower)) &* ConnectionTokens.hashPrime
        }
        entries.append((hash, offset, token.count))
        lengths |= ConnectionTokens.lengthBit(token.count)
    }

    /// True when the NUL-terminated header `name` is one of the tokens, ignoring ASCII case.
    func contains(_ name: UnsafePointer<CChar>) -> Bool {
        guard lengths != 0 else { return false }
        let length = strlen(name)
        guard lengths & ConnectionTokens.lengthBit(length) != 0 else { return false }
        var hash = ConnectionTokens.hashSeed
        for i in 0..<length { hash = (hash ^ UInt64(ConnectionTokens.lowercase(UInt8(bitPattern: name[i])))) &* ConnectionTokens.hashPrime }
        return bytes.withUnsafeBufferPointer { stored in
            for entry in entries where entry.hash == hash && entry.length == length {
                var i = 0
                while i < length && ConnectionTokens.lowercase(UInt8(bitPattern: name[i])) == stored[entry.offset + i] { i += 1 }
                if i == length { return true }
            }
            return false
        }
    }

    // FNV-1a, 64 bits.
    private static let hashSeed: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let hashPrime: UInt64 = 0x100_0000_01b3

    @inline(__always)
    private static func lowercase(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }

    @inline(__always)
    private static func lengthBit(_ length: Int) -> UInt64 { 1 << UInt64(min(length, 63)) }

    private static func equals(_ token: UnsafeRawBufferPointer, _ lowercased: StaticString) -> Bool {
        guard token.count == lowercased.utf8CodeUnitCount else { return false }
        for i in 0..<token.count where lowercase(token[i]) != lowercased.utf8Start[i] { return false }
        return true
    }
}
