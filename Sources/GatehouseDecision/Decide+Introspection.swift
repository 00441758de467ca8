import GatehouseCore
import GatehouseAuth
import GatehouseConfig
import GatehousePolicy

/// Opaque Bearer tokens (SPEC §14.3): a token that is not a JWS, when one issuer has
/// `introspection`, is decided from the provider's RFC 7662 answer — from this loop's cache, or
/// after ``Plan/needsIntrospection(_:)``. Pure: the answer arrives as a value.
extension Decide {
    /// A compact JWS has exactly two dots (RFC 7515 §7.1); anything else is an opaque token.
    static func isCompactJWS(_ token: Substring) -> Bool {
        var dots = 0
        for byte in token.utf8 where byte == UInt8(ascii: ".") { dots += 1 }
        return dots == 2
    }

    static func introspectionPlan(_ token: Substring, _ settings: IntrospectionSettings, route: Route, requirement: Requirement?,
                                  _ facts: RequestFacts, _ config: borrowing GatewayConfig, _ auth: AuthContext) -> Plan {
        if token.utf8.count > JWTVerifier.maxTokenBytes {
            return unauthenticated(route, facts, config, reason: .tokenTooLarge, tried: .introspection)
        }
        if let allowed = route.issuers, !allowed.contains(settings.issuerName) {
            return unauthenticated(route, facts, config, reason: .issuerNotAllowed, tried: .introspection)
        }
        let key = IntrospectionKey(token: token)
        let wait = IntrospectionWait(route: route, requirement: requirement, token: "", key: key)
        if let entry = auth.introspectionCache?.lookup(key, now: auth.now) {
            return decide(afterIntrospection: .success(entry), wait: wait, facts: facts, config: config, now: auth.now)
        }
        return .needsIntrospection(IntrospectionWait(route: route, requirement: requirement, token: String(token), key: key))
    }

    /// The rest of the decision once the provider answered (or did not), under the request's
    /// own snapshot: the issuer's audiences, the roles claim and the leeway of `config`.
    /// `introspectionUnavailable` and `introspectionBusy` are 503s for this token only.
    public static func plan(afterIntrospection result: Result<IntrospectionCache.Entry, Reason>, wait: IntrospectionWait,
                            facts: RequestFacts, config: borrowing GatewayConfig, now: Int64) -> Plan {
        // A shadow route forwards what it would refuse (SPEC §15.2), as after the other waits.
        shadowing(decide(afterIntrospection: result, wait: wait, facts: facts, config: config, now: now), facts, config)
    }

    private static func decide(afterIntrospection result: Result<IntrospectionCache.Entry, Reason>, wait: IntrospectionWait,
                               facts: RequestFacts, config: borrowing GatewayConfig, now: Int64) -> Plan {
        let route = wait.route
        let entry: IntrospectionCache.Entry
        switch result {
        case .failure(let reason):
            return .refuse(refusal(.serviceUnavailable, reason, route: route, tried: .introspection, facts, config))
        case .success(let found):
            entry = found
        }
        guard let jwt = config.jwt, let settings = jwt.introspection,
              let issuer = jwt.verifier.issuers.first(where: { $0.name == settings.issuerName }) else {
            return unauthenticated(route, facts, config, reason: .unknownIssuer, tried: .introspection)
        }
        switch entry.answer.evaluate(issuer: issuer, rolesClaim: jwt.verifier.rolesClaim, leeway: jwt.verifier.leeway, now: now,
                                     cacheUntil: entry.until) {
        case .failure(let reason):
            return unauthenticated(route, facts, config, reason: reason, tried: .introspection)
        case .success(let verified):
            let identity = Identity(method: .introspection, token: verified)
            if let requirement = wait.requirement, let failed = requirement.evaluate(verified) {
                var refused = refusal(.forbidden, failed, status: route.denyStatus, route: route, tried: .introspection,
                                      subject: verified.subject, facts, config)
                refused.identity = identity  // a shadow route forwards them with their identity headers
                return .refuse(refused)
            }
            return forward(route, identity, facts, config)
        }
    }
}

extension Decide {
    /// ``plan(afterIntrospection:wait:facts:config:now:)`` under a ``DecisionConfig``.
    public static func plan(afterIntrospection result: Result<IntrospectionCache.Entry, Reason>, wait: IntrospectionWait,
                            facts: RequestFacts, under: DecisionConfig, now: Int64) -> Plan {
        plan(afterIntrospection: result, wait: wait, facts: facts, config: under.config, now: now)
    }
}
