import GatehouseConfig
import GatehousePolicy
import GatehouseSessions

/// The configuration a request is decided under, held by reference: what a front-end keeps in
/// its snapshot and passes to the pipeline on the hot path. A `GatewayConfig` passed by value
/// from a class's property into another module is copied at every call (its ~40 fields
/// retained and released, measured with callgrind-jwt.sh); a reference is not.
public final class DecisionConfig: Sendable {
    public let config: GatewayConfig

    public init(_ config: GatewayConfig) { self.config = config }
}

extension RequestFacts {
    /// ``init(method:target:host:headers:config:)`` under a ``DecisionConfig``.
    public init(method: String, target: NormalizedTarget, host: String?, headers: some HeaderSource, under: DecisionConfig) {
        self.init(method: method, target: target, host: host, headers: headers, config: under.config)
    }
}

extension Decide {
    /// ``plan(_:config:auth:)`` under a ``DecisionConfig``.
    public static func plan(_ facts: RequestFacts, under: DecisionConfig, auth: AuthContext) -> Plan {
        plan(facts, config: under.config, auth: auth)
    }

    /// ``sessionEndpoint(_:config:)`` under a ``DecisionConfig``.
    public static func sessionEndpoint(_ facts: RequestFacts, under: DecisionConfig) -> EndpointPlan? {
        sessionEndpoint(facts, config: under.config)
    }

    /// ``plan(afterSession:wait:facts:config:now:)`` under a ``DecisionConfig``.
    public static func plan(afterSession lookup: Result<SessionRecord?, SessionStoreError>, wait: SessionWait,
                            facts: RequestFacts, under: DecisionConfig, now: Int64) -> Plan {
        plan(afterSession: lookup, wait: wait, facts: facts, config: under.config, now: now)
    }
}
