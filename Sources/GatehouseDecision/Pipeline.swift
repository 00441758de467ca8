import GatehouseConfig
import GatehousePolicy

/// The whole pipeline for a request described by values (`explain`, forward auth, tests): path
/// policy, facts, then the endpoint or route plan. The proxy's evhttp edge runs the same steps
/// one by one (it has limits to check between them and a head decided before its body).
public enum Pipeline {
    /// Where the effective host comes from.
    public enum Host: Sendable {
        /// Given by the caller (forward auth: the host the front proxy describes).
        case given(String?)
        /// As a proxied request has it: the absolute-form authority, else the `Host` header.
        case fromRequest
    }

    /// What the pipeline decided.
    public enum Outcome: Sendable {
        /// Refused before the facts were built (the path policy).
        case refused(Refusal)
        /// One of the gateway's own endpoints.
        case endpoint(EndpointPlan, RequestFacts)
        /// A route's plan (which may be a wait: carry `facts` along with the snapshot).
        case plan(Plan, RequestFacts)
    }

    /// Decides `method rawTarget` with `headers` under `config` (the request's own snapshot's).
    /// `client`: who asks, for rate-limit keys (SPEC §13; its `headers` only from a trusted peer).
    public static func decide(method: String, rawTarget: String, host: Host, headers: some HeaderSource,
                              config: borrowing GatewayConfig, auth: AuthContext,
                              client: ClientFacts = ClientFacts()) -> Outcome {
        let target: NormalizedTarget
        switch Decide.normalize(rawTarget, origin: headers.first("Origin"), config: config) {
        case .success(let normalized): target = normalized
        case .failure(let refusal): return .refused(refusal)
        }
        let effectiveHost: String?
        switch host {
        case .given(let value): effectiveHost = value
        case .fromRequest: effectiveHost = RequestFacts.host(of: target, headers: headers)
        }
        var facts = RequestFacts(method: method, target: target, host: effectiveHost, headers: headers, config: config)
        facts.client = client
        if let endpoint = Decide.sessionEndpoint(facts, config: config) { return .endpoint(endpoint, facts) }
        return .plan(Decide.plan(facts, config: config, auth: auth), facts)
    }
}
