import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// Shadow mode (SPEC §2 `routes[].mode`, §15.2): a route with `mode: shadow` decides every
/// request as usual, and a refusal becomes a forward that carries the refusal it replaced
/// (``Forward/shadow``) for the log and the metrics. The identity headers go along only when a
/// credential was valid (a `require` refusal); a missing or invalid one forwards anonymously.
extension Decide {
    /// `plan` as carried out on its route: unchanged on an enforcing route, and for an allowed
    /// request, a preflight, or a wait (the decision after the wait is shadowed in its turn).
    ///
    /// The common plans (a forward, a wait) return at the first test, which binds no payload:
    /// binding one copied the plan's route on every request (~1,000 instructions, callgrind).
    @inline(__always)
    static func shadowing(_ plan: consuming Plan, _ facts: RequestFacts, _ config: borrowing GatewayConfig) -> Plan {
        guard plan.isRefusalOrRedirect else { return plan }
        switch plan {
        case .refuse(let refusal):
            guard let route = refusal.route, route.mode == .shadow, isShadowable(refusal.reason) else { return plan }
            let verdict = ShadowVerdict(decision: refusal.decision, reason: refusal.reason, status: refusal.status,
                                        tried: refusal.tried)
            return shadowForward(route, identity: refusal.identity, verdict: verdict, facts, config)
        case .redirect(let redirect):
            guard redirect.route.mode == .shadow else { return plan }
            let verdict = ShadowVerdict(decision: .deny, reason: .loginRedirect, status: 302, tried: redirect.tried)
            return shadowForward(redirect.route, identity: nil, verdict: verdict, facts, config)
        default:
            return plan
        }
    }

    /// Refusals that shadow mode never lifts: the cross-origin checks (CSRF, SPEC §7.2, and the
    /// WebSocket Origin rule of §12, both `csrf_rejected`) protect users' sessions rather than
    /// the upstream, and a refused CORS preflight is answered at the gateway, never forwarded.
    /// (The path policy and `no_route` refuse before any route's mode is known.)
    static func isShadowable(_ reason: Reason) -> Bool {
        switch reason {
        case .csrfRejected, .corsRejected, .pathRejected, .noRoute, .malformedRequest: return false
        default: return true
        }
    }

    private static func shadowForward(_ route: Route, identity: Identity?, verdict: ShadowVerdict, _ facts: RequestFacts,
                                      _ config: borrowing GatewayConfig) -> Plan {
        var forward = forwarding(route, identity, facts, config)
        forward.shadow = verdict
        return .forward(forward)
    }
}

extension Plan {
    /// A refusal or a login redirect: the plans shadow mode may turn into a forward. Tested
    /// without binding the payload (no copy).
    @inline(__always)
    var isRefusalOrRedirect: Bool {
        switch self {
        case .refuse, .redirect: return true
        default: return false
        }
    }
}
