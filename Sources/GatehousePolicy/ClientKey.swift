/// The key under which login admission and login failures are counted per client (SPEC §3.2
/// Login admission, §2 `max_failures`): one text per client, whatever form its address was
/// written in.
///
/// - An IPv4 address is its own key, in dotted-quad form — also when a dual-stack socket
///   reports it as `::ffff:a.b.c.d`.
/// - An IPv6 address counts by its /64 prefix, written `2001:db8:1:2::/64`. One host is
///   commonly given a whole /64 (SLAAC, [RFC 7421](https://www.rfc-editor.org/rfc/rfc7421))
///   and may use any address in it: counted per address, it could rotate through 2^64 keys.
///   Written forms of one address (`2001:DB8::1`, `2001:db8:0:0::1`, `[2001:db8::1]`) are one key.
/// - Any other text (no address known) is kept as it is, cut at ``maxTextBytes`` bytes so that
///   a key costs bounded memory.
public enum ClientKey {
    /// The longest key kept for text that is not an IP address.
    public static let maxTextBytes = 64

    /// The key of `client`, an address as the access log's `client` field holds it.
    public static func of(_ client: String) -> String {
        guard let address = IPAddress(client) else {
            return client.utf8.count <= maxTextBytes ? client : String(decoding: client.utf8.prefix(maxTextBytes), as: UTF8.self)
        }
        if address.bits >> 32 == IPAddress.mappedPrefix >> 32 {
            return IPAddress.ipv4Text(UInt32(truncatingIfNeeded: address.bits))
        }
        let prefix = (address.bits >> 64) << 64
        return IPAddress.ipv6Text(prefix) + "/64"
    }
}
