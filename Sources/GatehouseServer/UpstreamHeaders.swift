import GatehouseConfig
import GatehouseCore
import GatehouseDecision
import GatehousePolicy

/// What the upstream receives (SPEC §7.1), shared by the proxy (`ProxyExchange`, which writes
/// straight into the request head) and `gatehouse test` (which lists it).
enum UpstreamHeaders {
    /// True when the client's header `name` (NUL-terminated) is not forwarded: removed by the
    /// filter, `Authorization` on a route with `strip_authorization`, or named by `Connection`.
    /// (The gateway's session cookie is cut out of `Cookie` by the caller.)
    @inline(__always)
    static func drops(_ name: UnsafePointer<CChar>, filter: RequestHeaderFilter, trustedPeer: Bool,
                      stripAuthorization: Bool, named: ConnectionTokens) -> Bool {
        if filter.removes(name, trustedPeer: trustedPeer) { return true }
        if stripAuthorization && HeaderRules.nameEquals(name, constant: "authorization") { return true }
        return named.contains(name)
    }

    /// The headers a request described by values would carry upstream, in the proxy's order:
    /// the client's that pass, then `Host`, `X-Real-IP`, `X-Forwarded-For`, `-Proto`, `-Host`,
    /// `X-Request-Id` and the plan's identity headers. `requestID` is the request's id (nil
    /// leaves it out: a made-up one is random). No `Content-Length` (no body is described).
    static func list(_ headers: [(String, String)], forward: Forward, config: GatewayConfig, peer: String,
                     host: String?, requestID: String?, tls: Bool = false) -> [(String, String)] {
        let filter = RequestHeaderFilter(identityHeaderNames: config.identityHeaders.allNames)
        let trusted = config.server.trustedProxies
        let trustedPeer = ProxyExchange.isTrusted(peer, trusted)
        var named = ConnectionTokens()
        for (name, value) in headers where sameName(name, "connection") { named.add(value) }
        let sessionCookie = config.sessions?.cookie
        var out: [(String, String)] = []
        for (name, value) in headers {
            if let sessionCookie, sameName(name, "cookie") {
                if let rest = sessionCookie.strippingSelf(fromCookieHeader: value) { out.append(("Cookie", rest)) }
                continue
            }
            let dropped = name.withCString {
                drops($0, filter: filter, trustedPeer: trustedPeer, stripAuthorization: forward.route.stripAuthorization,
                      named: named)
            }
            if !dropped { out.append((name, value)) }
        }
        let upstream = config.upstreams[forward.route.upstream]
        if upstream?.preserveHost ?? true, let host {
            out.append(("Host", host))
        } else if let target = upstream?.targets.first {
            out.append(("Host", target.hostHeader))
        }
        let incomingXFF = HeaderPairs(headers).joined("x-forwarded-for", separator: ", ")
        let client = trusted.isEmpty ? peer : ForwardedFor.clientAddress(peer: peer, incoming: incomingXFF, trusted: trusted)
        out.append(("X-Real-IP", client))
        out.append(("X-Forwarded-For", ForwardedFor.outgoing(peer: peer, incoming: incomingXFF, trusted: trusted)))
        out.append(("X-Forwarded-Proto", tls ? "https" : "http"))
        if let host { out.append(("X-Forwarded-Host", host)) }
        if let requestID { out.append(("X-Request-Id", requestID)) }
        // A valid incoming trace is kept (SPEC §15.3); a new one would be random: left out.
        if let incoming = HeaderPairs(headers).first("traceparent"), let trace = TraceContext.parse(incoming) {
            out.append(("traceparent", trace.header))
        }
        out += forward.identityHeaders
        return out
    }

    /// Equal ignoring ASCII case (`lowercased` is given in lowercase).
    static func sameName(_ name: String, _ lowercased: String) -> Bool {
        name.utf8.count == lowercased.utf8.count
            && zip(name.utf8, lowercased.utf8).allSatisfy { ($0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0) == $1 }
    }
}
