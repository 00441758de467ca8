/// The client address and the forwarded `X-Forwarded-For` value (SPEC §7.1).
///
/// `X-Forwarded-For` is the de-facto header that [RFC 7239](https://www.rfc-editor.org/rfc/rfc7239)
/// standardizes as `Forwarded: for=`: a comma-separated list to which every proxy appends the
/// address it received the request from. Only the entries added by proxies we trust can be
/// believed, so the list is read from the right and the walk stops at the first entry that is
/// not a trusted proxy ([RFC 7239 §7.4](https://www.rfc-editor.org/rfc/rfc7239#section-7.4);
/// the MDN "X-Forwarded-For: selecting an IP address" practice).
///
/// `incoming` is the request's header value; several `X-Forwarded-For` header lines must be
/// joined with `,` first, in order.
public enum ForwardedFor {
    /// The client is the peer, or — when the peer is trusted — the right-most entry of the
    /// incoming `X-Forwarded-For` that is not itself trusted (the left-most when all are trusted).
    ///
    /// Entries are trimmed of spaces and tabs, and empty entries are skipped. The walk stops at
    /// the first entry that is not an IP literal (a name, `unknown`, an address with a port, or
    /// bytes meant for a log line, SPEC §3.2): the client is then the peer, since nothing left of
    /// it can be believed and the client address must always be an address. Without a header,
    /// or with only empty entries, the client is the peer.
    public static func clientAddress(peer: String, incoming: String?, trusted: [CIDR]) -> String {
        guard let incoming, isTrusted(peer, trusted) else { return peer }
        var remaining = incoming[...]
        var leftmostTrusted: Substring?
        while true {
            let entry: Substring
            let comma = remaining.utf8.lastIndex(of: ASCII.comma)
            if let comma {
                entry = remaining[remaining.utf8.index(after: comma)...]
            } else {
                entry = remaining
            }
            let address = trimmed(entry)
            if !address.isEmpty {
                guard let parsed = IPAddress(address) else { return peer }
                // Written out afresh: brackets and a zone (`fe80::1%eth0`, not checked) dropped.
                guard trusted.contains(where: { $0.contains(parsed) }) else { return parsed.description }
                leftmostTrusted = address
            }
            guard let comma else { break }
            remaining = remaining[..<comma]
        }
        return leftmostTrusted.map(String.init) ?? peer
    }

    /// The outgoing header: the incoming chain plus the peer when the peer is trusted, else the
    /// peer alone (a chain from an untrusted client is replaced, never extended).
    public static func outgoing(peer: String, incoming: String?, trusted: [CIDR]) -> String {
        guard let incoming, isTrusted(peer, trusted) else { return peer }
        let chain = trimmed(incoming[...])
        return chain.isEmpty ? peer : "\(chain), \(peer)"
    }

    /// Whether `peer` is a trusted proxy (its forwarded headers may be believed).
    public static func isTrustedPeer(_ peer: String, trusted: [CIDR]) -> Bool { isTrusted(peer, trusted) }

    private static func isTrusted(_ address: String, _ trusted: [CIDR]) -> Bool {
        guard !trusted.isEmpty, let parsed = IPAddress(address) else { return false }
        return trusted.contains { $0.contains(parsed) }
    }

    /// Without leading and trailing spaces and tabs (HTTP OWS).
    private static func trimmed(_ text: Substring) -> Substring {
        let utf8 = text.utf8
        guard let first = utf8.firstIndex(where: { $0 != ASCII.space && $0 != ASCII.tab }),
              let last = utf8.lastIndex(where: { $0 != ASCII.space && $0 != ASCII.tab }) else { return "" }
        return text[first...last]
    }
}
