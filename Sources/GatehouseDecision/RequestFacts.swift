import GatehouseConfig
import GatehousePolicy

/// The facts of a request that the decision needs, built once per request at the front-end's
/// edge by ``init(method:target:host:headers:config:)`` and carried, with the snapshot the
/// request is decided under, through every asynchronous wait (SPEC §3).
public struct RequestFacts: Sendable {
    public var method: String
    public var target: NormalizedTarget
    /// The effective host: the absolute-form authority, else the `Host` header (or, in forward
    /// auth, the host the front proxy describes).
    public var host: String?
    public var authorization: String?
    public var accept: String?
    public var origin: String?
    /// Read on `OPTIONS` only (SPEC §6).
    public var accessControlRequestMethod: String?
    public var accessControlRequestHeaders: String?
    /// The gateway's own session cookie value, when sessions are on and the request has one.
    public var sessionCookie: String?
    /// Read when sessions are on, for a request with the cookie or a `POST` (CSRF, SPEC §7.2).
    public var secFetchSite: String?
    /// The request carries `Sec-WebSocket-Key` (an upgrade handshake; SPEC §12). Read only for
    /// a request with the session cookie: the Origin rule applies to cookie-authenticated ones.
    public var secWebSocketKey: Bool
    /// A WebSocket upgrade handshake (``WebSocketHandshake/isHandshake(method:upgrade:connection:)``):
    /// tunnelled on a route with `websocket: true` (SPEC §12).
    public var webSocketHandshake: Bool = false
    /// A handshake that announces a body (read for handshakes only): 400 on a websocket route.
    public var handshakeHasBody: Bool = false
    /// Who is asking, as rate-limit keys need it (SPEC §13); filled by
    /// ``identifyClient(address:peerTrusted:config:header:)`` when the config has rate limits.
    public var client = ClientFacts()

    public init(method: String, target: NormalizedTarget, host: String?, authorization: String? = nil,
                accept: String? = nil, origin: String? = nil, accessControlRequestMethod: String? = nil,
                accessControlRequestHeaders: String? = nil, sessionCookie: String? = nil, secFetchSite: String? = nil,
                secWebSocketKey: Bool = false) {
        self.method = method
        self.target = target
        self.host = host
        self.authorization = authorization
        self.accept = accept
        self.origin = origin
        self.accessControlRequestMethod = accessControlRequestMethod
        self.accessControlRequestHeaders = accessControlRequestHeaders
        self.sessionCookie = sessionCookie
        self.secFetchSite = secFetchSite
        self.secWebSocketKey = secWebSocketKey
    }

    /// The facts of a request from its method, normalized target, effective host and header
    /// fields, under `config` (the request's own snapshot's). Only what the decision can use
    /// is read: the preflight headers on `OPTIONS`, the CSRF and upgrade headers when a session
    /// cookie can matter — so that a plain request costs a few lookups and no copies.
    public init(method: String, target: NormalizedTarget, host: String?, headers: some HeaderSource,
                config: borrowing GatewayConfig) {
        // Every stored property assigned once, from locals: delegating to the memberwise init
        // and then setting fields made Swift copy and destroy the whole struct once more
        // (~650 instructions per request, deploy/bench/callgrind-jwt.sh).
        self.method = method
        self.target = target
        self.host = host
        authorization = headers.authorization()
        accept = headers.first("Accept")
        origin = headers.first("Origin")
        // Only a config with a websocket route reads `Upgrade` (elsewhere a handshake changes nothing).
        var handshake = false, handshakeBody = false
        if method == "GET", config.routes.tunnels, let upgrade = headers.first("Upgrade"),
           WebSocketHandshake.isHandshake(method: method, upgrade: upgrade,
                                          connection: headers.joined("connection", separator: ", ")) {
            handshake = true
            handshakeBody = WebSocketHandshake.announcesBody(contentLength: headers.first("Content-Length"),
                                                             transferEncoding: headers.first("Transfer-Encoding"))
        }
        webSocketHandshake = handshake
        handshakeHasBody = handshakeBody
        if method == "OPTIONS" {
            accessControlRequestMethod = headers.first("Access-Control-Request-Method")
            accessControlRequestHeaders = headers.joined("access-control-request-headers", separator: ", ")
        } else {
            accessControlRequestMethod = nil
            accessControlRequestHeaders = nil
        }
        // Not `if let sessions = config.sessions`: that copies the settings on every request.
        var cookie: String? = nil, fetchSite: String? = nil, webSocketKey = false
        if config.sessions != nil {
            if let cookieHeader = headers.joined("cookie", separator: "; ") {
                cookie = config.sessions?.cookie.value(inCookieHeader: cookieHeader)
            }
            if cookie != nil || method == "POST" { fetchSite = headers.first("Sec-Fetch-Site") }
            if cookie != nil { webSocketKey = headers.first("Sec-WebSocket-Key") != nil }
        }
        sessionCookie = cookie
        secFetchSite = fetchSite
        secWebSocketKey = webSocketKey
    }

    /// The effective host of a proxied request (RFC 9112 §3.2.2): the absolute-form target's
    /// authority, else the `Host` header.
    public static func host(of target: NormalizedTarget, headers: some HeaderSource) -> String? {
        target.authority ?? headers.first("Host")
    }
}
