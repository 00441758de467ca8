import GatehouseAuth
import GatehouseCore
import GatehousePolicy

/// Who the caller is, once authenticated.
///
/// An identity made from a verified token alone (``init(method:token:)``) holds only the token
/// and reads its subject and roles from it: one reference to copy instead of three (the
/// decision copies an identity several times a request; ~200 instructions a request with the
/// comparisons of ``IdentityHeaderValues/block(of:names:)``, deploy/bench/callgrind-jwt.sh).
public struct Identity: Sendable {
    public var method: AuthMethod
    public let token: VerifiedToken?
    /// The subject and roles when they are not the token's (or there is no token).
    private let own: Claims?

    private struct Claims: Sendable {
        let subject: String?
        let roles: [String]
    }

    public var subject: String? { own == nil ? token?.subject : own?.subject }
    public var roles: [String] { own == nil ? token?.roles ?? [] : own?.roles ?? [] }
    /// The subject and roles are the token's own (``init(method:token:)``).
    public var hasTokenClaims: Bool { own == nil && token != nil }

    public init(method: AuthMethod, subject: String?, roles: [String], token: VerifiedToken?) {
        self.method = method
        self.token = token
        own = Claims(subject: subject, roles: roles)
    }

    /// The identity a verified token vouches for: its subject and roles.
    public init(method: AuthMethod, token: VerifiedToken) {
        self.method = method
        self.token = token
        own = nil
    }
}

/// What the gateway does with a request, decided from its facts and its snapshot alone (no
/// I/O), complete down to the response headers: a front-end only carries it out. The proxy,
/// forward auth and `gatehouse explain` share it.
public enum Plan: Sendable {
    /// Forward to the route's upstream (or, in forward auth, answer 200).
    case forward(Forward)
    /// Refuse with the uniform error (SPEC §3.1).
    case refuse(Refusal)
    /// A browser without valid credentials on a route with `login_redirect`: 302 there.
    case redirect(Redirect)
    /// An allowed CORS preflight, answered at the gateway (a refused one is a ``refuse(_:)``).
    case preflight(PreflightAnswer)
    /// No Bearer token but the gateway's session cookie: look the session up in the store of
    /// the request's own snapshot, then finish with ``Decide/plan(afterSession:wait:facts:config:now:)``.
    case needsSession(SessionWait)
    /// A Bearer token whose `kid` names no key of its issuer, whose keys come from a URL: wait
    /// (without blocking the loop, at most `KeyWait.maxWaitMs`) for the refresh this triggers
    /// or one in flight, then decide again with ``AuthContext/mayWaitForKeys`` off (SPEC §3.2
    /// Keys). `issuer` is the issuer's name in `jwt.issuers`.
    case needsKeys(Route, issuer: String)
    /// Allowed, on a route with a `rate_limit` (SPEC §13): ask the rate-limit store about
    /// `check.key` (the memory store answers at once, Redis after a round trip), then finish
    /// with ``Decide/plan(afterRateLimit:check:facts:config:)``: the forward, or 429.
    case needsRateLimit(RateLimitCheck)
    /// An opaque (non-JWS) Bearer token for the issuer with `introspection`, not in this loop's
    /// cache: ask the provider (without blocking the loop), then finish with
    /// ``Decide/plan(afterIntrospection:wait:facts:config:now:)`` (SPEC §14.3).
    case needsIntrospection(IntrospectionWait)
}

/// What an opaque-token request waits with while the provider is asked: the route and its
/// `require` from the request's own snapshot, the token (to send; never logged or cached) and
/// its SHA-256 (the cache key).
public struct IntrospectionWait: Sendable {
    public var route: Route
    public var requirement: Requirement?
    public var token: String
    public var key: IntrospectionKey

    public init(route: Route, requirement: Requirement?, token: String, key: IntrospectionKey) {
        self.route = route
        self.requirement = requirement
        self.token = token
        self.key = key
    }
}

/// A request allowed through.
public struct Forward: Sendable {
    public var route: Route
    /// The caller; nil for an anonymous request on a route with `auth: none` or `optional`.
    public var identity: Identity?
    /// The CORS headers of the response (SPEC §6); nil when no CORS policy applies on the
    /// route: the upstream's own then pass as they are.
    public var cors: [(String, String)]?
    /// The identity headers the upstream gets (SPEC §7.1, §2 `identity_headers`), in order;
    /// empty for an anonymous caller. See ``IdentityHeaderValues`` for forward auth's variant.
    public var identityHeaders: [(String, String)] { identityBlock.pairs }
    /// The same with their header lines, as the upstream request head takes them.
    public var identityBlock: IdentityHeaderBlock
    /// A WebSocket handshake on a route with `websocket: true`: forwarded as an upgrade, and on
    /// the upstream's `101` the connection becomes a tunnel (SPEC §12).
    public var tunnel: Bool = false
    /// On a route in shadow mode (SPEC §15.2): the refusal that was not carried out (logged
    /// with `shadow: true` and counted); nil when the request was allowed.
    public var shadow: ShadowVerdict? = nil
}

/// What a route in shadow mode would have answered (SPEC §15.2).
public struct ShadowVerdict: Sendable, Equatable {
    public var decision: Decision
    public var reason: Reason
    public var status: Int
    /// The credential kind that was presented (logged as `auth` when it did not authenticate).
    public var tried: AuthMethod

    public init(decision: Decision, reason: Reason, status: Int, tried: AuthMethod) {
        self.decision = decision
        self.reason = reason
        self.status = status
        self.tried = tried
    }
}

/// A refusal with everything its answer needs (an `Error` so that steps may return it in a
/// `Result`).
public struct Refusal: Error, Sendable {
    public var error: GatewayError
    public var reason: Reason
    /// The status (a route's `deny_status` may make `forbidden` a 401).
    public var status: Int
    /// The matched route; nil when refused before a route was known.
    public var route: Route?
    /// The credential kind that was presented and failed (logged as `auth`).
    public var tried: AuthMethod
    public var subject: String?
    /// `WWW-Authenticate` (RFC 6750 §3), or nil.
    public var challenge: String?
    /// CORS headers of the answer (the route's policy, else the global one; none on a refused
    /// preflight).
    public var cors: [(String, String)]
    /// Other response headers (`Retry-After`).
    public var extraHeaders: [(String, String)]
    /// The connection is closed after the answer (the request's framing cannot be trusted).
    public var closeConnection: Bool
    /// The caller, when authenticated but refused by the route's `require` (a shadow route
    /// forwards them with their identity headers, SPEC §15.2).
    public var identity: Identity? = nil

    public init(_ error: GatewayError, _ reason: Reason, status: Int? = nil, route: Route? = nil, tried: AuthMethod = .none,
                subject: String? = nil, cors: [(String, String)] = [], extraHeaders: [(String, String)] = [],
                closeConnection: Bool = false) {
        self.error = error
        self.reason = reason
        self.status = status ?? error.status
        self.route = route
        self.tried = tried
        self.subject = subject
        self.challenge = Challenge.header(error: error, status: self.status, bearerPresented: tried == .jwt || tried == .introspection)
        self.cors = cors
        self.extraHeaders = extraHeaders
        self.closeConnection = closeConnection
    }

    /// How the access log classes it: a failure of the request or of the gateway's own side is
    /// an `error`, a refusal by policy a `deny`.
    public var decision: Decision {
        switch error {
        case .badRequest, .payloadTooLarge, .headersTooLarge, .badGateway, .serviceUnavailable, .gatewayTimeout: return .error
        default: return .deny
        }
    }
}

/// 302 to the login page (SPEC §3.1).
public struct Redirect: Sendable {
    public var route: Route
    /// `login_redirect` with `return_to=` the normalized path and query.
    public var location: String
    public var tried: AuthMethod
    /// Why the credentials did not do (the log says `login_redirect`).
    public var credentials: Reason
    public var cors: [(String, String)]
}

/// 204 to an allowed preflight, never forwarded (SPEC §6).
public struct PreflightAnswer: Sendable {
    /// nil for the gateway's own endpoints (global policy).
    public var route: Route?
    public var headers: [(String, String)]
}

/// What a session-cookie request waits with while the store looks the session up: the route
/// and its `require`, both taken from the config the request was matched in. The continuation
/// needs no config lookup by route index, so a reload that lands during the wait cannot pair
/// this route with another config's requirement (SPEC §3).
public struct SessionWait: Sendable {
    public var route: Route
    public var requirement: Requirement?
    /// The SHA-256 of the cookie: the store's key.
    public var idHash: String

    public init(route: Route, requirement: Requirement?, idHash: String) {
        self.route = route
        self.requirement = requirement
        self.idHash = idHash
    }
}

/// The `WWW-Authenticate` challenge of a refusal (RFC 6750 §3, SPEC §3.1).
public enum Challenge {
    public static let plain = "Bearer realm=\"gatehouse\""
    public static let invalidToken = "Bearer realm=\"gatehouse\", error=\"invalid_token\""
    public static let insufficientScope = "Bearer realm=\"gatehouse\", error=\"insufficient_scope\""

    /// A 401 always has one: `insufficient_scope` when it is a `forbidden` turned 401 by
    /// `deny_status`, `invalid_token` when a Bearer token was presented and failed, else the
    /// plain one. A 403 `forbidden` carries `insufficient_scope`; nothing else has one.
    public static func header(error: GatewayError, status: Int, bearerPresented: Bool) -> String? {
        if status == 401 {
            if error == .forbidden { return insufficientScope }
            return bearerPresented ? invalidToken : plain
        }
        return error == .forbidden ? insufficientScope : nil
    }
}
