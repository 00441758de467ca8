/// The client's `101 Switching Protocols` head for a tunnel (SPEC §12), from the upstream's.
enum SwitchingHead {
    /// The upstream's headers by the rules of `ProxyExchange.upstreamHead` (hop-by-hop and
    /// `Connection`-named removed, framing headers and a `Set-Cookie` for the gateway's own
    /// cookie dropped), then exactly `Connection: Upgrade` and `Upgrade: websocket`, and the
    /// request id. Nil when the upstream's `Connection` lists too many tokens.
    static func bytes(_ response: UpstreamResponseParser, sessionCookie: String?, requestID: String) -> [UInt8]? {
        var named = ConnectionTokens()
        if let connection = response.joined("connection") { named.add(connection) }
        if named.tooMany { return nil }
        var out = RequestHeadWriter(capacity: 512)
        out.append("HTTP/1.1 101 Switching Protocols\r\n")
        response.forEachHeader { name, value in
            if ProxyExchange.responseDropped.contains(name) || named.contains(name) { return }
            if HeaderRules.nameEquals(name, constant: "content-length") { return }  // `X-Request-Id` is in `responseDropped`
            if let sessionCookie, SetCookieName.isCookie(sessionCookie, setBy: name, value) { return }
            out.header(name, value)
        }
        out.header("Connection", "Upgrade")
        out.header("Upgrade", "websocket")
        out.header("X-Request-Id", requestID)
        out.append("\r\n")
        return out.bytes
    }
}
