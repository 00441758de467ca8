import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// What the forward-auth endpoint answers a front proxy (SPEC §11): only 200, 401 and 403
/// (nginx's `auth_request` turns anything else into a 500), and 503/504 for a failure.
///
/// The carrier adds `X-Request-Id` and `Cache-Control: no-store`; a refusal is written as the
/// uniform error of SPEC §3.1 by the same code as the proxy's.
public enum ForwardAuthAnswer: Sendable {
    /// 200, empty body, with *every* configured identity header (empty when anonymous: a
    /// proxy that copies a header the answer lacks may write its own placeholder text), then
    /// the route's CORS response headers (SPEC §6) for a proxy that copies them.
    /// On a route in shadow mode (SPEC §15.2) `shadow` is the refusal that was not carried out
    /// (logged with `shadow: true`): the answer is still 200.
    case allow(route: Route, identity: Identity?, headers: [(String, String)], shadow: ShadowVerdict?)
    /// 200 to an allowed CORS preflight, with its `Access-Control-*` headers for a proxy that
    /// copies them.
    case preflight(route: Route?, headers: [(String, String)])
    /// 401 (no or invalid credentials, or a route's `deny_status: 401`), 403 (every other
    /// refusal, with the `forbidden` body), or 503/504 (a failure).
    case refuse(Refusal)

    /// The answer to `plan`; nil for a plan that waits (the carrier waits, then asks again).
    public init?(_ plan: Plan, identityHeaders names: IdentityHeaders) {
        switch plan {
        case .forward(let forward):
            // The plan's identity headers already name every header unless one had no value
            // (the common token has them all): only then are they made again, with the empty ones.
            var headers = forward.identityHeaders.count == 3 + names.claims.count ? forward.identityHeaders
                : IdentityHeaderValues.headers(of: forward.identity, names: names, everyName: true)
            if let cors = forward.cors, !cors.isEmpty { headers.append(contentsOf: cors) }
            self = .allow(route: forward.route, identity: forward.identity, headers: headers, shadow: forward.shadow)
        case .preflight(let answer):
            self = .preflight(route: answer.route, headers: answer.headers)
        case .refuse(let refusal):
            self = .refuse(Self.mapped(refusal))
        case .redirect(let redirect):
            // No login redirect: the front proxy maps 401 to its own login page.
            self = .refuse(Refusal(.unauthorized, redirect.credentials, route: redirect.route, tried: redirect.tried,
                                   cors: redirect.cors))
        case .needsSession, .needsKeys, .needsRateLimit, .needsIntrospection:
            return nil
        }
    }

    /// A refusal as forward auth answers it: 401, 503 and 504 as they are; anything else 403
    /// with the `forbidden` body, its reason, CORS headers and `Retry-After` kept. The
    /// `insufficient_scope` challenge stays only on a `require` refusal (a `forbidden` one).
    public static func mapped(_ refusal: Refusal) -> Refusal {
        switch refusal.status {
        case 401, 503, 504:
            var kept = refusal
            kept.closeConnection = false
            return kept
        default:
            var mapped = Refusal(.forbidden, refusal.reason, status: 403, route: refusal.route, tried: refusal.tried,
                                 subject: refusal.subject, cors: refusal.cors,
                                 extraHeaders: refusal.extraHeaders.filter { $0.0.lowercased() == "retry-after" })
            if refusal.error != .forbidden { mapped.challenge = nil }
            return mapped
        }
    }

    /// A description refused before any route is known (``ForwardAuthRequest``): 403, no
    /// challenge, no CORS headers.
    public static func refusal(_ reason: Reason) -> Refusal {
        var refusal = Refusal(.forbidden, reason, status: 403)
        refusal.challenge = nil
        return refusal
    }

    /// The facts of the described request: its normalized target (refused as `path_rejected`
    /// when the path policy refuses it or would change its path), its method and host, and the
    /// credentials, `Origin`, `Accept` and the rest from the decision request's own `headers`.
    public static func facts(of described: DescribedRequest, headers: some HeaderSource,
                             under: DecisionConfig) -> Result<RequestFacts, Refusal> {
        guard let target = ForwardAuthRequest.normalize(described, policy: under.config.server.pathPolicy) else {
            return .failure(refusal(.pathRejected))
        }
        return .success(RequestFacts(method: described.method, target: target, host: described.host, headers: headers,
                                     under: under))
    }
}
