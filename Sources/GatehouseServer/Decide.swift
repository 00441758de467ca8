import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// What the gateway will do with a request, decided from its facts alone (no I/O), so that
/// the server and `gatehouse explain` share one decision.
enum Plan {
    /// Forward to the route's upstream with this identity.
    case forward(Route, auth: AuthMethod, subject: String?)
    /// Refuse with the uniform error; `route` is nil when no route was matched.
    case refuse(GatewayError, Reason, route: Route?, status: Int, bearerPresented: Bool)
}

/// The facts of a request that the decision needs.
struct RequestFacts {
    var method: String
    var target: NormalizedTarget
    /// The effective host: the absolute-form authority, else the `Host` header.
    var host: String?
    var authorization: String?
}

enum Decide {
    /// Steps 5–8 of SPEC §3 for a request whose path has passed the path policy.
    static func plan(_ facts: RequestFacts, config: GatewayConfig) -> Plan {
        guard let route = config.routes.match(method: facts.method, path: facts.target.path, host: facts.host) else {
            return .refuse(.notFound, .noRoute, route: nil, status: 404, bearerPresented: false)
        }
        let bearer = facts.authorization.map(isBearer) ?? false
        switch route.auth {
        case .none:
            return .forward(route, auth: .none, subject: nil)
        case .optional, .required:
            // No authenticator is configured yet (JWT and sessions land with their issues):
            // a presented credential cannot be verified and is never silently ignored.
            if let authorization = facts.authorization, !authorization.isEmpty {
                return .refuse(.unauthorized, bearer ? .unknownIssuer : .malformedToken, route: route, status: 401,
                               bearerPresented: bearer)
            }
            if route.auth == .optional { return .forward(route, auth: .none, subject: nil) }
            return .refuse(.unauthorized, .missingCredentials, route: route, status: 401, bearerPresented: false)
        }
    }

    static func isBearer(_ authorization: String) -> Bool {
        authorization.utf8.count > 7 && authorization.prefix(7).lowercased() == "bearer "
    }
}
