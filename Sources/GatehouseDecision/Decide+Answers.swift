import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehousePolicy

/// The parts of a plan that say how it is answered: CORS headers, the challenge, the login
/// redirect, the identity headers.
extension Decide {
    /// A refusal under `config`: the route's CORS policy, else (before a route is known) the
    /// global one (SPEC §6).
    static func refusal(_ error: GatewayError, _ reason: Reason, status: Int? = nil, route: Route?, tried: AuthMethod = .none,
                        subject: String? = nil, _ facts: RequestFacts, _ config: borrowing GatewayConfig) -> Refusal {
        let policy = route.map { config.corsPolicy(for: $0) } ?? config.cors
        return Refusal(error, reason, status: status, route: route, tried: tried, subject: subject,
                       cors: policy?.responseHeaders(origin: facts.origin) ?? [])
    }

    /// A refusal made before the request's facts exist (the limits of SPEC §3 step 1, the path
    /// policy): the global CORS policy's headers for `origin`.
    public static func refusalBeforeRoute(_ error: GatewayError, _ reason: Reason, origin: String?,
                                          config: borrowing GatewayConfig, closeConnection: Bool = false) -> Refusal {
        Refusal(error, reason, cors: config.cors?.responseHeaders(origin: origin) ?? [], closeConnection: closeConnection)
    }

    /// Step 3 of SPEC §3, the path policy (SPEC §4.1): the normalized target, or the 400
    /// `path_rejected` refusal (global CORS policy).
    public static func normalize(_ rawTarget: String, origin: String?,
                                 config: borrowing GatewayConfig) -> Result<NormalizedTarget, Refusal> {
        guard let target = PathNormalizer.normalize(target: rawTarget, policy: config.server.pathPolicy) else {
            return .failure(refusalBeforeRoute(.badRequest, .pathRejected, origin: origin, config: config))
        }
        return .success(target)
    }

    /// The forward of an allowed request — through the route's rate limit when it has one
    /// (SPEC §3 step 9).
    static func forward(_ route: Route, _ identity: Identity?, _ facts: RequestFacts,
                        _ config: borrowing GatewayConfig) -> Plan {
        let forward = forwarding(route, identity, facts, config)
        if let limit = route.rateLimit { return .needsRateLimit(rateLimitCheck(forward, limit: limit, facts)) }
        return .forward(forward)
    }

    static func forwarding(_ route: Route, _ identity: Identity?, _ facts: RequestFacts,
                           _ config: borrowing GatewayConfig) -> Forward {
        let cors = config.corsPolicy(for: route).map { $0.responseHeaders(origin: facts.origin) }
        let headers = identity.map { IdentityHeaderValues.block(of: $0, names: config.identityHeaders) } ?? .none
        return Forward(route: route, identity: identity, cors: cors, identityBlock: headers,
                       tunnel: route.websocket && facts.webSocketHandshake)
    }

    /// 401, or 302 to `login_redirect` for a browser's GET/HEAD (SPEC §3.1).
    static func unauthenticated(_ route: Route, _ facts: RequestFacts, _ config: borrowing GatewayConfig, reason: Reason,
                                tried: AuthMethod) -> Plan {
        if let location = route.loginRedirect, facts.method == "GET" || facts.method == "HEAD",
           AcceptHeader.prefersHTML(facts.accept) {
            let cors = config.corsPolicy(for: route)?.responseHeaders(origin: facts.origin) ?? []
            return .redirect(Redirect(route: route, location: loginLocation(location, target: facts.target), tried: tried,
                                      credentials: reason, cors: cors))
        }
        return .refuse(refusal(.unauthorized, reason, route: route, tried: tried, facts, config))
    }

    /// `location` plus `return_to=` the normalized path and query, URL-encoded.
    public static func loginLocation(_ location: String, target: NormalizedTarget) -> String {
        var back = target.path
        if let query = target.query { back += "?" + query }
        let separator = location.contains("?") ? "&" : "?"
        return location + separator + "return_to=" + URLEncoding.component(back)
    }

    /// The token of an `Authorization: Bearer …` header (scheme case-insensitive, RFC 6750 §2.1),
    /// or nil when the header is absent or of another scheme (not a credential of ours). Spaces
    /// and tabs around the token are dropped. Byte by byte, and a substring of the header: no
    /// copy, no Unicode case mapping, on every authenticated request.
    public static func bearerToken(_ authorization: String?) -> Substring? {
        guard var authorization, let found = bearerTokenBytes(&authorization) else { return nil }
        return token(of: authorization, bytes: found)
    }

    /// The token of ``bearerToken(_:)`` as byte offsets within `authorization` (found on the
    /// bytes themselves: String index arithmetic costs ~40 instructions a step).
    public static func bearerTokenBytes(_ authorization: inout String) -> Range<Int>? {
        let found: (start: Int, end: Int)? = authorization.withUTF8 { bytes in
            let scheme: StaticString = "bearer"
            let count = scheme.utf8CodeUnitCount
            guard bytes.count >= count else { return nil }
            for i in 0..<count where bytes[i] | 0x20 != scheme.utf8Start[i] { return nil }
            // `| 0x20` maps only `B` and `b` to `b` (and so on): the scheme is ASCII letters.
            guard bytes.count == count || bytes[count] == UInt8(ascii: " ") else { return nil }
            func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
            var start = count
            while start < bytes.count, isBlank(bytes[start]) { start += 1 }
            var end = bytes.count
            while end > start, isBlank(bytes[end - 1]) { end -= 1 }
            return (start, end)
        }
        guard let found else { return nil }
        return found.start..<found.end
    }

    /// The substring of `authorization` at byte offsets `bytes` (from ``bearerTokenBytes(_:)``).
    static func token(of authorization: String, bytes: Range<Int>) -> Substring {
        let utf8 = authorization.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: bytes.lowerBound)
        let end = utf8.index(start, offsetBy: bytes.count)
        return authorization[start..<end]
    }
}

/// SPEC §2 `identity_headers`: the values the upstream (or forward auth's front proxy) gets.
public enum IdentityHeaderValues {
    /// Subject (when known), roles (comma-separated), method, and the configured claims, in
    /// that order. Values with control characters are left out rather than sent broken; a role
    /// with a comma would read as two roles and is left out of the list. With `everyName`,
    /// every configured name is present, empty when there is no value (forward auth: a front
    /// proxy copying a header the answer lacks may write its own placeholder, SPEC §11), and
    /// `identity` may be nil (anonymous: all empty).
    public static func headers(of identity: Identity?, names: IdentityHeaders, everyName: Bool = false) -> [(String, String)] {
        var out: [(String, String)] = []
        out.reserveCapacity(3 + names.claims.count)
        func add(_ name: String, _ value: String?) {
            let value = value ?? ""
            added(name, VerifiedToken.isHeaderText(value) ? value : nil)
        }
        /// `value` already checked: nil when it failed.
        func added(_ name: String, _ value: String?) {
            if let value { out.append((name, value)) } else if everyName { out.append((name, "")) }
        }
        guard let identity else {
            if everyName { for name in [names.subject, names.roles, names.method] + names.claims.map(\.header) { out.append((name, "")) } }
            return out
        }
        // A token's subject and role list were checked and joined when it was verified: an
        // identity made from the token alone has them so; any other's are made here.
        let token = identity.token
        if identity.subject != nil || everyName {
            if identity.hasTokenClaims, token?.subject != nil {
                added(names.subject, token?.subjectHeaderValue)
            } else {
                add(names.subject, identity.subject)
            }
        }
        if identity.hasTokenClaims {
            added(names.roles, token?.rolesHeaderValue)
        } else {
            add(names.roles, VerifiedToken.roleList(identity.roles))
        }
        added(names.method, identity.method.rawValue)  // a constant of lowercase letters
        for (header, claim) in names.claims {
            let value = token?.claims.value(atPath: claim).flatMap(claimText)
            if value != nil || everyName { add(header, value) }
        }
        return out
    }

    /// ``headers(of:names:everyName:)`` with the same as header lines. A verified token's are
    /// made once per configuration (``VerifiedToken/identityHeaders(layout:method:make:)``) for
    /// an identity made from the token alone (``Identity/init(method:token:)``); any other
    /// identity's each time.
    public static func block(of identity: Identity, names: IdentityHeaders) -> IdentityHeaderBlock {
        // The closure is written out at its one use, not kept in a `let`: a stored closure
        // captures `identity` and `names` in a heap context, copied (and freed) on every
        // request, memo hit or not (~1,000 instructions a request, `callgrind-jwt.sh`).
        // `identity.token?.` reads the token in place (`if let token` copied the optional out:
        // a retain and a release, ~200 instructions a request).
        if identity.hasTokenClaims,
           let block = identity.token?.identityHeaders(layout: names.layout, method: identity.method.rawValue, make: {
               lines(headers(of: identity, names: names))
           }) {
            return block
        }
        let made = lines(headers(of: identity, names: names))
        return IdentityHeaderBlock(pairs: made.pairs, lines: made.lines, dropped: made.dropped)
    }

    /// `pairs` and their header lines, `Name: value` CRLF each, of those with a token name and a
    /// value without control bytes but HTAB (SPEC §3.2; the others are counted in `dropped`).
    static func lines(_ pairs: [(String, String)]) -> (pairs: [(String, String)], lines: [UInt8], dropped: Int) {
        var lines: [UInt8] = []
        lines.reserveCapacity(pairs.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        var dropped = 0
        for (name, value) in pairs {
            var name = name
            var value = value
            // Copied from the strings' own bytes (appending a `String.UTF8View` goes element by
            // element: ~900 instructions a token on the uncached path).
            let written = name.withUTF8 { name in
                value.withUTF8 { value in
                    guard PlainBytes.isToken(name), PlainBytes.isFieldValue(value) else { return false }
                    lines.append(contentsOf: name)
                    lines.append(UInt8(ascii: ":"))
                    lines.append(UInt8(ascii: " "))
                    lines.append(contentsOf: value)
                    lines.append(13)
                    lines.append(10)
                    return true
                }
            }
            if !written { dropped += 1 }
        }
        return (pairs, lines, dropped)
    }

    /// A claim as a header value: strings as they are, numbers and booleans as JSON writes them,
    /// arrays of those comma-joined; objects are not sent.
    public static func claimText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .number(let n): return n.description
        case .bool(let b): return b ? "true" : "false"
        case .array(let items):
            let parts = items.compactMap { item -> String? in
                if case .array = item { return nil }
                return claimText(item)
            }
            return parts.joined(separator: ",")
        default: return nil
        }
    }
}
