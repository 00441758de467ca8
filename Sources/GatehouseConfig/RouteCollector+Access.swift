import GatehouseAuth
import GatehouseCore
import GatehousePolicy

/// The keys of a route that decide who gets through and what a refused browser sees:
/// `require`, `issuers`, `login_redirect` and `cors` (SPEC §2, §3.1, §6).
extension RouteCollector {
    struct Access {
        var requirement: Requirement?
        var issuers: Set<String>?
        var loginRedirect: String?
        var cors: RouteCORS = .inherit
    }

    func access(_ fields: Fields, _ item: ConfigNode, auth: AuthRequirement) -> Access {
        var access = Access()
        let requireNode = fields["require"]
        if let requireNode {
            access.requirement = RequireSection.requirement(requireNode, diagnostics)
            if auth == .none {
                diagnostics.error(requireNode, "contradicts auth: none (nobody is authenticated on this route); "
                                      + "remove require or set auth: required")
            }
        }
        if issuers == nil, !hasSessions, auth != .none {
            // Without `jwt` and `sessions` nobody can authenticate.
            let consequence = auth == .optional && requireNode == nil
                ? "every caller is anonymous here and a request with credentials answers 401"
                : "this route answers 401 to every request"
            let at = requireNode ?? fields["auth"] ?? item
            diagnostics.warning(at.location, "\(item.path): no authenticator is configured: \(consequence)")
        }
        if let node = fields["issuers"] { access.issuers = issuerNames(node, auth: auth) }
        if let node = fields["login_redirect"], let text = node.string(diagnostics) {
            switch AddressSyntax.loginRedirect(text) {
            case .success(let location):
                access.loginRedirect = location
                if auth == .none {
                    diagnostics.warning(node, "never used: with auth: none no request is refused for lack of credentials")
                }
            case .failure(let error):
                diagnostics.error(node, error.message)
            }
        }
        if let node = fields["cors"], let cors = CORSSection.route(node, diagnostics) { access.cors = cors }
        return access
    }

    /// `issuers`: names from `jwt.issuers` whose tokens count on this route.
    private func issuerNames(_ node: ConfigNode, auth: AuthRequirement) -> Set<String>? {
        guard let defined = issuers else {
            diagnostics.error(node, "there is no jwt section, so there are no issuers to name")
            return nil
        }
        guard let items = node.stringList(of: "issuer", diagnostics) else { return nil }
        var names: Set<String> = []
        for (name, item) in items {
            guard defined.contains(name) else {
                let list = defined.isEmpty ? "none" : defined.joined(separator: ", ")
                diagnostics.error(item, "unknown issuer \(quoted(name)); defined in jwt.issuers: \(list)")
                continue
            }
            names.insert(name)
        }
        if auth == .none {
            diagnostics.warning(node, "never used: with auth: none no token is checked")
        }
        return names
    }
}
