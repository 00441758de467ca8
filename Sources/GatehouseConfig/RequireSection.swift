import GatehouseAuth
import GatehouseCore

/// A route's `require` (SPEC §2): roles, scopes and claim values the caller must have.
enum RequireSection {
    /// nil when invalid (reported). An empty block is an error: it would read as a restriction
    /// and demand nothing.
    static func requirement(_ node: ConfigNode, _ diagnostics: Diagnostics) -> Requirement? {
        let errorsBefore = diagnostics.errorCount
        guard let fields = node.fields(ConfigKeys.require, diagnostics) else { return nil }
        if ConfigKeys.require.allSatisfy({ fields[$0] == nil }) && diagnostics.errorCount == errorsBefore {
            diagnostics.error(node, "requires nothing; list roles_any, roles_all, scopes_all or claims, "
                                  + "or leave require out")
            return nil
        }
        let rolesAny = fields["roles_any"]?.stringList(of: "role", diagnostics)?.map(\.value) ?? []
        let rolesAll = fields["roles_all"]?.stringList(of: "role", diagnostics)?.map(\.value) ?? []
        let scopes = fields["scopes_all"]?.stringList(of: "scope", diagnostics) ?? []
        for (scope, item) in scopes where scope.contains(" ") {
            diagnostics.error(item, "a scope has no spaces (the scope claim is space-separated), got \(quoted(scope))")
        }
        let claims = fields["claims"].map { claimConditions($0, diagnostics) } ?? []
        guard diagnostics.errorCount == errorsBefore else { return nil }
        return Requirement(rolesAny: rolesAny, rolesAll: rolesAll, scopesAll: scopes.map(\.value), claims: claims)
    }

    /// `claims`: dotted path -> a string, an integer or a boolean, in file order.
    private static func claimConditions(_ node: ConfigNode, _ diagnostics: Diagnostics) -> [Requirement.ClaimCondition] {
        guard let entries = node.entries(diagnostics) else { return [] }
        if entries.isEmpty { diagnostics.error(node, "at least one claim is needed") }
        var conditions: [Requirement.ClaimCondition] = []
        for entry in entries {
            let value = node.named(entry.key, entry.value)
            if let problem = ClaimPath.problem(entry.key) {
                diagnostics.error(entry.keyLocation, "\(value.path): \(problem)")
                continue
            }
            guard let expected = claimValue(value) else {
                diagnostics.error(value, "expected a string, an integer or true/false to compare the claim with, "
                                      + "got \(value.described)")
                continue
            }
            conditions.append(Requirement.ClaimCondition(path: entry.key, value: expected))
        }
        return conditions
    }

    /// The JSON value a scalar stands for, by its YAML type: `7` is a number, `"7"` a string.
    private static func claimValue(_ value: ConfigNode) -> JSONValue? {
        guard let scalar = value.node.scalar, !value.isNull else { return nil }
        switch value.node.tagName {
        case .str: return .string(scalar.string)
        case .int: return value.node.int.map { .number(JSONNumber($0)) }
        case .bool: return value.node.bool.map(JSONValue.bool)
        default: return nil
        }
    }
}
