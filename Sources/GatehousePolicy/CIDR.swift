/// An IPv4 or IPv6 network in CIDR notation ([RFC 4632 §3.1](https://www.rfc-editor.org/rfc/rfc4632#section-3.1),
/// [RFC 4291 §2.3](https://www.rfc-editor.org/rfc/rfc4291#section-2.3)): `10.0.0.0/8`,
/// `fd00::/8`, `::1/128`; a bare address is /32 or /128.
///
/// Addresses are parsed as ``IPAddress`` does (no brackets or zones here). The prefix length is
/// decimal, 0–32 for IPv4 and 0–128 for IPv6, without leading zeros. Host bits below the prefix
/// are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
///
/// An IPv4 network also contains the IPv4-mapped forms of its addresses (`::ffff:10.1.2.3` is
/// in `10.0.0.0/8`), and an IPv6 network that includes `::ffff:0:0/96` (`::/0` for one)
/// contains the IPv4 addresses it maps.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The network address, host bits cleared; IPv4 as IPv4-mapped IPv6.
    let network: UInt128
    /// The prefix length over all 128 bits (an IPv4 /8 is 104 here).
    let mappedPrefixLength: Int
    /// Whether the network was written as IPv4.
    public let isIPv4: Bool

    public init?(_ text: String) {
        let utf8 = text.utf8
        let slash = utf8.firstIndex(of: ASCII.slash)
        let addressText = Substring(utf8[..<(slash ?? utf8.endIndex)])
        guard !addressText.utf8.contains(ASCII.openBracket), !addressText.utf8.contains(ASCII.percent),
              let address = IPAddress.parse(addressText.utf8) else { return nil }
        let familyBits = address.isIPv4 ? 32 : 128
        var length = familyBits
        if let slash {
            let digits = utf8[utf8.index(after: slash)...]
            guard (1...3).contains(digits.count),
                  digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  digits.count == 1 || digits.first != UInt8(ascii: "0"),
                  let parsed = Int(Substring(digits)), parsed <= familyBits else { return nil }
            length = parsed
        }
        isIPv4 = address.isIPv4
        mappedPrefixLength = address.isIPv4 ? length + 96 : length
        network = address.bits & Self.mask(mappedPrefixLength)
    }

    /// The prefix length as written for the family (0–32 or 0–128).
    public var prefixLength: Int { isIPv4 ? mappedPrefixLength - 96 : mappedPrefixLength }

    static func mask(_ length: Int) -> UInt128 {
        length == 0 ? 0 : ~UInt128(0) << (128 - length)
    }

    /// Whether `address` (IPv4 or IPv6 text, as ``IPAddress`` accepts it) is in the network.
    /// False for text that is not an address.
    public func contains(_ address: String) -> Bool {
        guard let parsed = IPAddress(address) else { return false }
        return contains(parsed)
    }

    /// Whether `address` is in the network.
    public func contains(_ address: IPAddress) -> Bool {
        address.bits & Self.mask(mappedPrefixLength) == network
    }

    /// The canonical text: network address (dotted quad, or RFC 5952 IPv6), `/`, prefix length.
    public var description: String {
        let address = isIPv4 ? IPAddress.ipv4Text(UInt32(truncatingIfNeeded: network)) : IPAddress.ipv6Text(network)
        return "\(address)/\(prefixLength)"
    }
}
