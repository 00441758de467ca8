/// An IPv4 or IPv6 address, held as 128 bits: an IPv4 address is kept as its IPv4-mapped IPv6
/// form `::ffff:a.b.c.d` ([RFC 4291 §2.5.5.2](https://www.rfc-editor.org/rfc/rfc4291#section-2.5.5.2)),
/// so that `1.2.3.4` and `::ffff:1.2.3.4` (how a dual-stack socket reports an IPv4 peer) are
/// the same address.
///
/// Accepted text: dotted-quad IPv4 (four decimal parts, no leading zeros: `010.0.0.1` is
/// ambiguous and refused), IPv6 in full, compressed (`fd00::1`) and mixed (`::ffff:1.2.3.4`)
/// forms ([RFC 4291 §2.2](https://www.rfc-editor.org/rfc/rfc4291#section-2.2)), optionally in
/// brackets (`[::1]`, as in RFC 7239 `for=`) and with a zone (`fe80::1%eth0`, ignored).
/// No ports, no surrounding spaces.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address; IPv4 as IPv4-mapped IPv6.
    let bits: UInt128
    /// Whether the address was written as IPv4 (decides `description`).
    public let isIPv4: Bool

    static let mappedPrefix: UInt128 = 0xFFFF << 32

    init(bits: UInt128, isIPv4: Bool) {
        self.bits = bits
        self.isIPv4 = isIPv4
    }

    public init?(_ text: some StringProtocol) {
        var utf8 = Substring(text).utf8
        if utf8.first == ASCII.openBracket {
            guard utf8.last == ASCII.closeBracket, utf8.count > 2 else { return nil }
            utf8 = utf8.dropFirst().dropLast()
            guard utf8.contains(ASCII.colon) else { return nil }  // brackets hold IPv6 only
        }
        if let zone = utf8.firstIndex(of: ASCII.percent) {
            guard utf8.contains(ASCII.colon), utf8.index(after: zone) < utf8.endIndex else { return nil }
            utf8 = utf8[..<zone]
        }
        guard let parsed = Self.parse(utf8) else { return nil }
        self = parsed
    }

    /// Parses an address without brackets or zone.
    static func parse(_ utf8: Substring.UTF8View) -> IPAddress? {
        if let result = utf8.withContiguousStorageIfAvailable({ parse(bytes: $0) }) { return result }
        return Array(utf8).withUnsafeBufferPointer { parse(bytes: $0) }
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> IPAddress? {
        if bytes.contains(ASCII.colon) {
            return parseIPv6(bytes).map { IPAddress(bits: $0, isIPv4: false) }
        }
        return parseIPv4(bytes[...]).map { IPAddress(bits: mappedPrefix | UInt128($0), isIPv4: true) }
    }

    /// Dotted-quad IPv4.
    static func parseIPv4(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var index = bytes.startIndex
        while parts < 4 {
            var part: UInt32 = 0
            var digits = 0
            let start = index
            while index < bytes.endIndex, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                part = part * 10 + UInt32(bytes[index] - UInt8(ascii: "0"))
                digits += 1
                index += 1
                guard digits <= 3 else { return nil }
            }
            guard digits > 0, part <= 255, !(digits > 1 && bytes[start] == UInt8(ascii: "0")) else { return nil }
            value = value << 8 | part
            parts += 1
            if parts < 4 {
                guard index < bytes.endIndex, bytes[index] == ASCII.dot else { return nil }
                index += 1
            }
        }
        return index == bytes.endIndex ? value : nil
    }

    /// IPv6 text: up to 8 groups of 1–4 hex digits, at most one `::` standing for one or more
    /// zero groups, and optionally a dotted IPv4 address as the last 32 bits.
    static func parseIPv6(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt128? {
        var head: UInt128 = 0, headGroups = 0
        var tail: UInt128 = 0, tailGroups = 0
        var compressed = false
        var index = 0
        let count = bytes.count
        if count >= 2, bytes[0] == ASCII.colon, bytes[1] == ASCII.colon {
            compressed = true
            index = 2
        } else if count == 0 || bytes[0] == ASCII.colon {
            return nil
        }
        func append(_ group: UInt128, groups: Int = 1) {
            if compressed {
                tail = tail << (16 * groups) | group
                tailGroups += groups
            } else {
                head = head << (16 * groups) | group
                headGroups += groups
            }
        }
        while index < count {
            let start = index
            var group: UInt128 = 0
            while index < count, index - start < 5, let digit = ASCII.hexValue(bytes[index]) {
                group = group << 4 | UInt128(digit)
                index += 1
            }
            if index < count, bytes[index] == ASCII.dot {  // the IPv4 tail: the rest of the text
                guard let ipv4 = parseIPv4(bytes[start..<count]) else { return nil }
                append(UInt128(ipv4), groups: 2)
                index = count
                break
            }
            guard index > start, index - start <= 4 else { return nil }
            append(group)
            if index == count { break }
            guard bytes[index] == ASCII.colon else { return nil }
            index += 1
            if index < count, bytes[index] == ASCII.colon {
                guard !compressed else { return nil }
                compressed = true
                index += 1
            } else if index == count {
                return nil  // a single trailing colon
            }
        }
        let groups = headGroups + tailGroups
        guard compressed ? groups <= 7 : groups == 8 else { return nil }
        return head << (16 * (8 - headGroups)) | tail
    }

    /// IPv4 as dotted quad; IPv6 as [RFC 5952](https://www.rfc-editor.org/rfc/rfc5952) text
    /// (lower-case, the longest run of two or more zero groups compressed, IPv4-mapped
    /// addresses as `::ffff:a.b.c.d`).
    public var description: String {
        if isIPv4 { return Self.ipv4Text(UInt32(truncatingIfNeeded: bits)) }
        return Self.ipv6Text(bits)
    }

    static func ipv4Text(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    static func ipv6Text(_ bits: UInt128) -> String {
        if bits >> 32 == mappedPrefix >> 32 {
            return "::ffff:" + ipv4Text(UInt32(truncatingIfNeeded: bits))
        }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits >> (16 * (7 - $0))) }
        // The longest run of zero groups (the first on a tie), if at least two long.
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { bestStart = runStart; bestLength = index - runStart }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard bestLength >= 2 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }
}
