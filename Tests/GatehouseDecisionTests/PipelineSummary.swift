import GatehouseCore
@testable import GatehouseDecision

/// What a front-end would answer, flattened for table rows: the kind of plan, status, error,
/// reason, challenge, and the response headers (CORS, identity, `Location`, preflight).
struct Summary: Equatable, CustomStringConvertible {
    var kind: String
    var status: Int?
    var error: GatewayError?
    var reason: Reason?
    var challenge: String?
    var route: String?
    var headers: [String: String] = [:]

    var description: String {
        "\(kind) \(status.map(String.init) ?? "-") \(error?.rawValue ?? "-") \(reason?.rawValue ?? "-") route=\(route ?? "-") "
            + "challenge=\(challenge ?? "-") \(headers.sorted { $0.key < $1.key })"
    }

    /// Header names lowercased; repeated names joined with ", ".
    static func headerMap(_ pairs: [(String, String)]) -> [String: String] {
        var map: [String: String] = [:]
        for (name, value) in pairs {
            let key = name.lowercased()
            map[key] = map[key].map { $0 + ", " + value } ?? value
        }
        return map
    }

    init(kind: String, status: Int? = nil, error: GatewayError? = nil, reason: Reason? = nil, challenge: String? = nil,
         route: String? = nil, headers: [(String, String)] = []) {
        self.kind = kind
        self.status = status
        self.error = error
        self.reason = reason
        self.challenge = challenge
        self.route = route
        self.headers = Self.headerMap(headers)
    }

    init(_ refusal: Refusal) {
        self.init(kind: "refuse", status: refusal.status, error: refusal.error, reason: refusal.reason,
                  challenge: refusal.challenge, route: refusal.route?.name, headers: refusal.cors + refusal.extraHeaders)
    }

    init(_ plan: Plan) {
        switch plan {
        case .forward(let f):
            self.init(kind: "forward", route: f.route.name, headers: (f.cors ?? []) + f.identityHeaders)
            if let shadow = f.shadow {
                self.headers["x-shadow"] = "\(shadow.decision.rawValue) \(shadow.reason.rawValue) \(shadow.status) \(shadow.tried.rawValue)"
            }
        case .refuse(let r):
            self.init(r)
        case .redirect(let r):
            self.init(kind: "redirect", status: 302, reason: .loginRedirect, route: r.route.name,
                      headers: r.cors + [("Location", r.location)])
            self.headers["x-credentials"] = r.credentials.rawValue
        case .preflight(let p):
            self.init(kind: "preflight", status: 204, route: p.route?.name, headers: p.headers)
        case .needsSession(let wait):
            self.init(kind: "needsSession", route: wait.route.name)
        case let .needsKeys(route, issuer):
            self.init(kind: "needsKeys", route: route.name)
            self.headers["x-issuer"] = issuer
        case .needsRateLimit(let check):
            self.init(kind: "needsRateLimit", route: check.forward.route.name)
            self.headers["x-key"] = check.key.description
        case .needsIntrospection(let wait):
            self.init(kind: "needsIntrospection", route: wait.route.name)
        }
    }

    init(_ plan: EndpointPlan) {
        switch plan {
        case .preflight(let p): self.init(kind: "preflight", status: 204, headers: p.headers)
        case .refuse(let r): self.init(r)
        case .login(_, let cors): self.init(kind: "login", headers: cors)
        case .keepalive(_, let cors): self.init(kind: "keepalive", headers: cors)
        case .logout(let idHash, let cors): self.init(kind: idHash == nil ? "logout-now" : "logout", headers: cors)
        case .oidcLogin: self.init(kind: "oidcLogin")
        case .oidcCallback: self.init(kind: "oidcCallback")
        }
    }
}
