/// A caller's identity headers (SPEC §7.1, §2 `identity_headers`) under one `identity_headers`
/// configuration: the name/value pairs, and the same as header lines (`Name: value` CRLF each,
/// every one already checked) that the upstream request head takes as they are.
///
/// Made by GatehouseDecision's `IdentityHeaderValues`. A verified token keeps the last one made
/// for it (``VerifiedToken/identityHeaders(layout:method:make:)``): a token presented again
/// gets its headers without making the pairs and checking and writing each line again (~1,800
/// instructions per request with the three default headers, deploy/bench/callgrind-jwt.sh).
public final class IdentityHeaderBlock: Sendable {
    /// The headers in order.
    public let pairs: [(String, String)]
    /// The header lines of the pairs that may be written (a token name, a value without
    /// control bytes but HTAB), in the same order.
    public let lines: [UInt8]
    /// Pairs left out of `lines` because they could not be written safely.
    public let dropped: Int
    /// What it was made for: the configuration's ``IdentityHeaders`` layout and the caller's
    /// authentication method (a token may be a JWT's or an introspected one's).
    let layout: [String]
    let method: String

    /// A block kept for no token (an identity of its own, or a test's).
    public convenience init(pairs: [(String, String)], lines: [UInt8], dropped: Int) {
        self.init(pairs: pairs, lines: lines, dropped: dropped, layout: [], method: "")
    }

    /// A block a token keeps, with what it was made for.
    init(pairs: [(String, String)], lines: [UInt8], dropped: Int, layout: [String], method: String) {
        self.pairs = pairs
        self.lines = lines
        self.dropped = dropped
        self.layout = layout
        self.method = method
    }

    /// No identity headers (an anonymous caller).
    public static let none = IdentityHeaderBlock(pairs: [], lines: [], dropped: 0)
}
