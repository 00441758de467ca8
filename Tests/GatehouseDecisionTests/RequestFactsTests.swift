import XCTest
import GatehouseConfig
import GatehousePolicy
@testable import GatehouseDecision

/// The facts a front-end builds once per request from its header fields (SPEC §3): what is
/// read, when, and how hostile header forms are taken.
final class RequestFactsTests: XCTestCase {
    typealias F = PipelineFixture

    static func facts(_ headers: [(String, String)], method: String = "GET", sessions: Bool = true,
                      target: NormalizedTarget = NormalizedTarget(path: "/api/x", query: nil, authority: nil)) -> RequestFacts {
        let source = HeaderPairs(headers)
        var config = F.config
        if !sessions { config.sessions = nil }
        return RequestFacts(method: method, target: target, host: RequestFacts.host(of: target, headers: source),
                            headers: source, config: config)
    }

    func testNamesMatchIgnoringASCIICaseOnlyAndTheFirstFieldCounts() {
        let facts = Self.facts([("aUtHoRiZaTiOn", "Bearer a"), ("Authorization", "Bearer b"), ("ORIGIN", "https://x.test")])
        XCTAssertEqual(facts.authorization, "Bearer a")
        XCTAssertEqual(facts.origin, "https://x.test")
        // U+212A KELVIN SIGN lowercases to `k` in Unicode, never in a header name.
        XCTAssertNil(HeaderPairs([("Coo\u{212A}ie", "\(F.cookieName)=\(F.cookie)")]).first("cookie"))
        XCTAssertNil(Self.facts([("Coo\u{212A}ie", "\(F.cookieName)=\(F.cookie)")]).sessionCookie)
    }

    func testTheSessionCookieIsFoundAcrossSeveralCookieFields() {
        let facts = Self.facts([("Cookie", "a=1"), ("cookie", "\(F.cookieName)=\(F.cookie)")])
        XCTAssertEqual(facts.sessionCookie, F.cookie)
    }

    func testPreflightHeadersAreReadOnOptionsOnly() {
        let headers = [("Access-Control-Request-Method", "PUT"), ("Access-Control-Request-Headers", "a"),
                       ("access-control-request-headers", "b")]
        XCTAssertNil(Self.facts(headers, method: "GET").accessControlRequestMethod)
        let preflight = Self.facts(headers, method: "OPTIONS")
        XCTAssertEqual(preflight.accessControlRequestMethod, "PUT")
        XCTAssertEqual(preflight.accessControlRequestHeaders, "a, b")
    }

    func testCSRFAndUpgradeHeadersAreReadOnlyWhenASessionCanMatter() {
        let ws = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        let site = ("Sec-Fetch-Site", "cross-site")
        let cookie = ("Cookie", "\(F.cookieName)=\(F.cookie)")
        let withoutCookie = Self.facts([ws, site])
        XCTAssertFalse(withoutCookie.secWebSocketKey)
        XCTAssertNil(withoutCookie.secFetchSite)
        XCTAssertEqual(Self.facts([site], method: "POST").secFetchSite, "cross-site", "the endpoints' CSRF check needs it")
        let withCookie = Self.facts([ws, site, cookie])
        XCTAssertTrue(withCookie.secWebSocketKey)
        XCTAssertEqual(withCookie.secFetchSite, "cross-site")
        XCTAssertTrue(Self.facts([("sec-websocket-key", ""), cookie]).secWebSocketKey, "present, even empty")
        let sessionsOff = Self.facts([ws, site, cookie], sessions: false)
        XCTAssertNil(sessionsOff.sessionCookie)
        XCTAssertFalse(sessionsOff.secWebSocketKey)
    }

    func testTheHostIsTheAbsoluteFormAuthorityElseTheHostField() {
        XCTAssertEqual(Self.facts([("Host", "a.test")]).host, "a.test")
        let absolute = NormalizedTarget(path: "/x", query: nil, authority: "b.test")
        XCTAssertEqual(Self.facts([("Host", "a.test")], target: absolute).host, "b.test")
        XCTAssertNil(Self.facts([]).host)
    }

    func testHugeAndControlByteValuesAreCarriedAsTheyAreForThePipelineToRefuse() {
        let huge = String(repeating: "x", count: 100_000)
        XCTAssertEqual(Self.facts([("Authorization", "Bearer " + huge)]).authorization?.utf8.count, 100_007)
        XCTAssertEqual(Decide.bearerToken("Bearer \u{0}abc").map(String.init), "\u{0}abc")
    }

    /// SPEC §13: the `header:` values are read only from a trusted peer, and only the names
    /// that some route keys on.
    func testRateLimitHeadersAreReadOnlyFromATrustedPeer() {
        XCTAssertEqual(F.config.rateLimitHeaders, ["x-api-key"])
        XCTAssertTrue(F.config.hasRateLimits)
        var asked: [String] = []
        var facts = Self.facts([])
        facts.identifyClient(address: "203.0.113.9", peerTrusted: false, config: F.config) { asked.append($0); return "k" }
        XCTAssertEqual(facts.client.address, "203.0.113.9")
        XCTAssertFalse(facts.client.peerTrusted)
        XCTAssertTrue(facts.client.headers.isEmpty)
        XCTAssertEqual(asked, [], "an untrusted peer's headers are not even read")
        facts.identifyClient(address: "203.0.113.9", peerTrusted: true, config: F.config) { asked.append($0); return $0 == "x-api-key" ? "k1" : nil }
        XCTAssertEqual(asked, ["x-api-key"])
        XCTAssertEqual(facts.client.headers.map(\.1), ["k1"])
        var absent = Self.facts([])
        absent.identifyClient(address: "::1", peerTrusted: true, config: F.config) { _ in nil }
        XCTAssertTrue(absent.client.headers.isEmpty)
    }
}
