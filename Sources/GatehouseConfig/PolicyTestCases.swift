import GatehouseAuth
import GatehouseCore
import GatehouseSessions
import Yams

/// One case of a `gatehouse test` cases file (SPEC §15.1), checked against the configuration
/// it runs under: its issuer, key file and user exist, its expectations name real reasons.
public struct PolicyTestCase: Sendable {
    public var name: String
    /// Where the case starts (`FILE:LINE:COL`), for JUnit and messages.
    public var location: SourceLocation
    public var method: String
    /// The request target as a client sends it (path and query).
    public var target: String
    public var headers: [(String, String)]
    /// The peer address the request comes from (default `192.0.2.1`, a documentation address).
    public var client: String
    public var token: PolicyTestToken?
    /// A logged-in user of the users file (`session: {user}`).
    public var sessionUser: String?
    public var expect: PolicyTestExpectation
}

/// `token:` — a JWT minted for a `jwt.issuers` entry when the case runs.
public struct PolicyTestToken: Sendable {
    /// The issuer's name in `jwt.issuers`.
    public var issuer: String
    public var algorithm: JWSAlgorithm
    public var signer: JWTMinter.Signer
    /// A private key from `key_file`: its public half replaces the issuer's keys for this case.
    public var standsIn: Bool
    /// `iss` and the first audience of the issuer (nil: not set by default).
    public var iss: String?
    public var audience: String?
    /// `claims:` in file order; a null value leaves that claim out (also a default one).
    public var claims: [(String, JSONValue?)]

    /// The claims of a token minted at `now`: the issuer's `iss`, its first audience, `iat`
    /// now and `exp` an hour later, unless `claims` sets them; then `claims` in order.
    public func payload(now: Int64) -> JSONObject {
        var members: [(name: String, value: JSONValue)] = []
        func given(_ name: String) -> Bool { claims.contains { $0.0 == name } }
        if let iss, !given("iss") { members.append(("iss", .string(iss))) }
        if let audience, !given("aud") { members.append(("aud", .string(audience))) }
        if !given("iat") { members.append(("iat", .number(JSONNumber(now)))) }
        if !given("exp") { members.append(("exp", .number(JSONNumber(now + 3600)))) }
        for (name, value) in claims { if let value { members.append((name, value)) } }
        return JSONObject(members)
    }

    /// The compact JWS for `now`.
    public func mint(now: Int64) -> String? {
        JWTMinter.mint(claims: payload(now: now), algorithm: algorithm, signer: signer)
    }
}

/// `expect:` — what is compared; nil fields are not compared.
public struct PolicyTestExpectation: Sendable {
    public var status: Int?
    /// `.some(nil)`: no route must match (`route: null`).
    public var route: String??
    /// `.some(nil)`: no reason (an allowed request; `reason: null`).
    public var reason: Reason??
    /// Headers the upstream must receive with these values; a nil value: must not receive it.
    public var upstreamHeaders: [(String, String?)]?
}

/// What reading cases files produced.
public struct PolicyTestLoadResult: Sendable {
    public var cases: [PolicyTestCase]
    public var problems: [ConfigProblem]
    public var errors: [ConfigProblem] { problems.filter { $0.severity == .error } }
}

/// Reads `gatehouse test` cases files (SPEC §15.1), in the policy-file style of the config:
/// the same YAML reader (size cap, aliases and merge keys refused), unknown keys refused, and
/// every problem reported as `FILE:LINE:COL`.
public enum PolicyTestCases {
    static let fileKeys = ["cases"]
    static let caseKeys = ["name", "request", "token", "session", "expect"]
    static let requestKeys = ["method", "path", "headers", "client"]
    static let tokenKeys = ["issuer", "claims", "key_file", "alg"]
    static let sessionKeys = ["user"]
    static let expectKeys = ["status", "route", "reason", "upstream_headers"]
    /// The peer address of a case that names none (RFC 5737 TEST-NET-1).
    public static let defaultClient = "192.0.2.1"

    /// The cases of every file in `paths` (FILE as given), checked against `config`.
    public static func load(paths: [String], config: GatewayConfig) -> PolicyTestLoadResult {
        let diagnostics = Diagnostics()
        var cases: [PolicyTestCase] = []
        for path in paths {
            cases += load(path: path, config: config, diagnostics)
        }
        return PolicyTestLoadResult(cases: cases, problems: diagnostics.problems)
    }

    static func load(path: String, config: GatewayConfig, _ diagnostics: Diagnostics) -> [PolicyTestCase] {
        guard let root = YAMLSource.load(path: path, file: path, diagnostics),
              let fields = root.fields(fileKeys, diagnostics) else { return [] }
        guard let list = fields.required("cases", diagnostics)?.list(diagnostics) else { return [] }
        if list.isEmpty { diagnostics.warning(root.location, "no cases in this file") }
        let reader = CaseReader(config: config, directory: ConfigPaths.directory(of: path), diagnostics: diagnostics)
        var names: [String: SourceLocation] = [:]
        var cases: [PolicyTestCase] = []
        for item in list {
            let before = diagnostics.errorCount
            let testCase = reader.read(item)
            if let testCase {
                if let first = names[testCase.name] {
                    diagnostics.error(item, "name \(quoted(testCase.name)) is used twice (first at \(first))")
                } else {
                    names[testCase.name] = testCase.location
                }
            }
            if let testCase, diagnostics.errorCount == before { cases.append(testCase) }
        }
        return cases
    }
}
