/// Why a request ended the way it did: a stable id shared by the access log (`reason`) and
/// metrics labels. Never sent to the client.
public enum Reason: String, Sendable, CaseIterable {
    // request shape
    case malformedRequest = "malformed_request"
    case pathRejected = "path_rejected"
    case headersTooLarge = "headers_too_large"
    case payloadTooLarge = "payload_too_large"
    /// The request head did not arrive within `server.header_timeout` (logged with 408).
    case headerTimeout = "header_timeout"
    case noRoute = "no_route"
    // authentication
    case missingCredentials = "missing_credentials"
    case malformedToken = "malformed_token"
    case tokenTooLarge = "token_too_large"
    case unknownIssuer = "unknown_issuer"
    case algNotAllowed = "alg_not_allowed"
    case unknownKid = "unknown_kid"
    case badSignature = "bad_signature"
    case tokenExpired = "token_expired"
    case tokenNotYetValid = "token_not_yet_valid"
    case wrongAudience = "wrong_audience"
    case wrongIssuer = "wrong_issuer"
    case unsupportedCrit = "unsupported_crit"
    case issuerNotAllowed = "issuer_not_allowed"
    case noKeys = "no_keys"
    case sessionExpired = "session_expired"
    case sessionRevoked = "session_revoked"
    case sessionUnknown = "session_unknown"
    case invalidCredentials = "invalid_credentials"
    case throttled = "throttled"
    // authorization
    case insufficientRole = "insufficient_role"
    case insufficientScope = "insufficient_scope"
    case claimMismatch = "claim_mismatch"
    case loginRedirect = "login_redirect"
    case corsRejected = "cors_rejected"
    case csrfRejected = "csrf_rejected"
    // upstream
    case upstreamTimeout = "upstream_timeout"
    case upstreamConnectFailed = "upstream_connect_failed"
    case upstreamError = "upstream_error"
    case upstreamDown = "upstream_down"
    case sessionStoreDown = "session_store_down"
    case clientClosed = "client_closed"
    // login admission (kept last: adding a case does not renumber the others)
    /// A login refused because its client already has 2 password checks running (SPEC §3.2).
    case concurrentLogins = "concurrent_logins"
    // rate limits (SPEC §13)
    /// Over the route's `rate_limit` (429 with `Retry-After`).
    case rateLimited = "rate_limited"
    // introspection (SPEC §14.3)
    /// The provider answered `active: false` for an opaque token (or it expired, or is not for us).
    case tokenInactive = "token_inactive"
    /// The introspection endpoint did not answer (or answered garbage): 503 for that token.
    case introspectionUnavailable = "introspection_unavailable"
    /// The client already has 8 introspection calls in flight: 503.
    case introspectionBusy = "introspection_busy"
    // OIDC browser login (SPEC §14.2)
    /// The callback's `state` has no valid, unexpired attempt cookie of this browser.
    case oidcStateInvalid = "oidc_state_invalid"
    /// The provider refused the code (replayed, expired, wrong verifier) or sent an error back.
    case oidcCodeRefused = "oidc_code_refused"
    /// The ID token failed a check (signature, `iss`, `aud` = client_id, `nonce`, `exp`, `sub`).
    case oidcIDTokenInvalid = "oidc_id_token_invalid"
    /// The provider's endpoints are not known yet or its token endpoint did not answer: 503.
    case oidcProviderUnavailable = "oidc_provider_unavailable"
    // forward auth (SPEC §11)
    /// A decision request whose description of the original request (the headers of
    /// `forward_auth.style`) is missing, repeated or malformed: 403.
    case forwardAuthIncomplete = "forward_auth_incomplete"
    /// A decision request from a peer outside `forward_auth.allow_from`: 404.
    case forwardAuthPeer = "forward_auth_peer"
    // WebSocket tunnels (SPEC §12): how an open tunnel ended (also `token_expired`, `session_expired`)
    /// Either side closed the tunnel, or the gateway did (a reload that refuses it, a stop).
    case tunnelClosed = "tunnel_closed"
    /// No byte either way for `server.tunnel_idle_timeout`.
    case tunnelIdle = "tunnel_idle"
}

/// The outcome class of a request, as logged (`decision`) and counted.
public enum Decision: String, Sendable, CaseIterable {
    case allow, deny, preflight, error
}

/// How the caller was authenticated, as logged (`auth`) and sent in `X-Auth-Method`.
public enum AuthMethod: String, Sendable {
    case none, jwt, session
    /// An opaque Bearer token checked at the provider's introspection endpoint (SPEC §14.3).
    case introspection
}

/// Reasons travel as the failure of `Result`s (JWT verification, session lookups).
extension Reason: Error {}
