import Glibc

/// The client request headers that never reach an upstream as sent (SPEC §7.1, §3.2), decided
/// by one table lookup per header name.
///
/// Names are compared ignoring ASCII case and reading `_` as `-`: CGI, WSGI, PHP and
/// Rack upstreams see `X_Real_IP` and `X-Real-IP` as the same variable (`HTTP_X_REAL_IP`),
/// so a client's underscore spelling would otherwise stand in for a removed header. The
/// `Connection`-named headers and the gateway's session cookie are handled beside this table.
///
/// - always removed: the hop-by-hop headers, those the gateway sets itself (`Host`,
///   `Content-Length`, `X-Forwarded-For/-Proto/-Host`, `X-Request-Id`, `X-Real-IP`),
///   `Expect`, the URL-override headers (`X-Original-URL`, `X-Rewrite-URL`,
///   `X-Original-URI`: route bypass on stacks that honour them), the method overrides
///   (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`: they would get around
///   `match.methods`), the configured identity headers and every `X-Auth-*`.
/// - removed unless the peer is a trusted proxy: `Forwarded`, `X-Forwarded-Port`,
///   `X-Forwarded-Prefix`, `X-Forwarded-Server` (what the front proxy tells the upstream).
///
/// `X-Real-IP` is always the gateway's own (the client address it derived, from a trusted
/// chain when there is one): the client's copy is removed also from a trusted peer, so that the
/// upstream never reads two.
struct RequestHeaderFilter: Sendable {
    /// Headers removed from every forwarded request (lowercase, `-`).
    static let alwaysRemoved: [String] = HeaderRules.hopByHop + [
        "host", "content-length", "expect",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "x-real-ip",
        "x-original-url", "x-rewrite-url", "x-original-uri",
        "x-http-method-override", "x-http-method", "x-method-override",
        // The gateway writes the request's own (the client's when valid, SPEC §15.3).
        "traceparent",
    ]

    /// Headers removed unless the peer is a trusted proxy (lowercase, `-`).
    static let removedUnlessTrusted: [String] = ["forwarded", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server"]

    private let always: FoldedNameTable
    private let untrusted: FoldedNameTable

    /// The filter with the configured identity header names (removed always).
    init(identityHeaderNames: [String]) {
        always = FoldedNameTable(Self.alwaysRemoved + identityHeaderNames)
        untrusted = FoldedNameTable(Self.removedUnlessTrusted)
    }

    /// True when the client's header `name` (NUL-terminated) is not forwarded.
    @inline(__always)
    func removes(_ name: UnsafePointer<CChar>, trustedPeer: Bool) -> Bool {
        if HeaderRules.isXAuth(name) { return true }
        let length = strlen(name)
        if always.contains(name, length: length) { return true }
        return !trustedPeer && untrusted.contains(name, length: length)
    }
}

/// Lowercase header names, with `_` read as `-`, bucketed by length: a lookup compares bytes
/// with only the names of the same length, touches no reference counts and builds no String.
struct FoldedNameTable: Sendable {
    private let bytes: [UInt8]
    /// Entries sorted by length: (offset in `bytes`, length).
    private let entries: [(offset: Int, length: Int)]
    /// `byLength[n]` is the range of `entries` with length n (names longer than the table: none).
    private let byLength: [Range<Int>]

    init(_ names: [String]) {
        let folded = Set(names.map { String(decoding: $0.utf8.map(FoldedNameTable.fold), as: UTF8.self) })
            .filter { !$0.isEmpty }
            .sorted { ($0.utf8.count, $0) < ($1.utf8.count, $1) }
        var bytes: [UInt8] = []
        var entries: [(offset: Int, length: Int)] = []
        let longest = folded.last?.utf8.count ?? 0
        var byLength = [Range<Int>](repeating: 0..<0, count: longest + 1)
        for name in folded {
            let n = name.utf8.count
            if byLength[n].isEmpty { byLength[n] = entries.count..<entries.count }
            entries.append((bytes.count, n))
            bytes.append(contentsOf: name.utf8)
            byLength[n] = byLength[n].lowerBound..<entries.count
        }
        self.bytes = bytes
        self.entries = entries
        self.byLength = byLength
    }

    /// ASCII lowercase, `_` as `-`.
    @inline(__always)
    static func fold(_ c: UInt8) -> UInt8 {
        if c >= 65 && c <= 90 { return c | 0x20 }
        return c == 0x5F ? 0x2D : c
    }

    /// True when `name` (of `length` bytes) is in the table.
    @inline(__always)
    func contains(_ name: UnsafePointer<CChar>, length: Int) -> Bool {
        guard length < byLength.count else { return false }
        let range = byLength[length]
        if range.isEmpty { return false }
        return bytes.withUnsafeBufferPointer { stored in
            entries.withUnsafeBufferPointer { entries in
                for index in range {
                    let offset = entries[index].offset
                    var i = 0
                    while i < length && FoldedNameTable.fold(UInt8(bitPattern: name[i])) == stored[offset + i] { i += 1 }
                    if i == length { return true }
                }
                return false
            }
        }
    }
}
