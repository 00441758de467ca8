import XCTest
@testable import GatehouseSessions

/// SPEC §7.2, one test per rule (Go's net/http.CrossOriginProtection).
final class CSRFCheckTests: XCTestCase {
    private let publicOrigin = "https://api.example.com"

    private func allows(method: String = "POST", site: String? = nil, origin: String? = nil, host: String? = "api.example.com",
                        publicOrigin: String? = "https://api.example.com",
                        cors: [String] = ["https://app.example.com"]) -> Bool {
        CSRFCheck.allows(method: method, secFetchSite: site, origin: origin, host: host, publicOrigin: publicOrigin,
                         corsAllows: { cors.contains($0) })
    }

    func testSafeMethodsPassWhateverTheHeaders() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            XCTAssertTrue(allows(method: method, site: "cross-site", origin: "https://evil.example"), method)
        }
    }

    func testMethodsAreCaseSensitiveSoLowercaseGetIsUnsafe() {
        XCTAssertFalse(allows(method: "get", site: "cross-site", origin: "https://evil.example"))
    }

    func testUnsafeMethodsAreChecked() {
        for method in ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"] {
            XCTAssertFalse(allows(method: method, site: "cross-site", origin: "https://evil.example"), method)
        }
    }

    func testSecFetchSiteSameOriginPasses() {
        XCTAssertTrue(allows(site: "same-origin", origin: "https://evil.example"))
    }

    func testSecFetchSiteNonePasses() {
        XCTAssertTrue(allows(site: "none"))
    }

    func testSecFetchSiteCrossSiteIsRefused() {
        XCTAssertFalse(allows(site: "cross-site", origin: "https://evil.example"))
    }

    func testSecFetchSiteSameSiteIsRefused() {
        XCTAssertFalse(allows(site: "same-site", origin: "https://other.example.com"))
    }

    func testSecFetchSiteCrossSiteWithoutOriginIsRefused() {
        XCTAssertFalse(allows(site: "cross-site"))
    }

    func testUnknownSecFetchSiteValueIsRefused() {
        XCTAssertFalse(allows(site: "Same-Origin", origin: "https://evil.example"))
    }

    func testOriginEqualToPublicOriginPassesEvenCrossSite() {
        XCTAssertTrue(allows(site: "cross-site", origin: "https://api.example.com", host: "internal:8080"))
        XCTAssertTrue(allows(site: "same-site", origin: "HTTPS://API.example.com", host: nil), "ASCII case-insensitive")
        XCTAssertTrue(allows(origin: "https://api.example.com", host: "elsewhere", publicOrigin: "https://api.example.com/"),
                      "a trailing slash in public_origin is ignored")
    }

    func testOriginAllowedByCORSPasses() {
        XCTAssertTrue(allows(site: "cross-site", origin: "https://app.example.com"))
        XCTAssertTrue(allows(site: "same-site", origin: "https://app.example.com"))
        XCTAssertTrue(allows(origin: "https://app.example.com", host: "other"))
    }

    func testNeitherHeaderPasses() {
        XCTAssertTrue(allows(publicOrigin: nil, cors: []))
        XCTAssertTrue(allows(site: "", origin: "", publicOrigin: nil, cors: []), "empty headers count as absent")
    }

    func testNoSecFetchSiteAndOriginMatchingHostPasses() {
        XCTAssertTrue(allows(origin: "https://gw.internal:8443", host: "gw.internal:8443", publicOrigin: nil, cors: []))
        XCTAssertTrue(allows(origin: "http://GW.internal", host: "gw.INTERNAL", publicOrigin: nil, cors: []))
    }

    func testOriginHostPortMustMatchExactly() {
        let table: [(description: String, origin: String, host: String?)] = [
            ("port differs", "https://gw.internal:8443", "gw.internal"),
            ("default port spelled out in Host", "https://gw.internal", "gw.internal:443"),
            ("other host", "https://evil.example", "gw.internal"),
            ("suffix", "https://gw.internal.evil", "gw.internal"),
            ("null origin", "null", "gw.internal"),
            ("null origin, no Host", "null", nil),
            ("no Host", "https://gw.internal", nil),
            ("empty Host", "https://gw.internal", ""),
            ("userinfo", "https://gw.internal@evil.example", "gw.internal"),
            ("a path", "https://gw.internal/", "gw.internal"),
            ("no scheme", "gw.internal", "gw.internal"),
        ]
        for row in table {
            XCTAssertFalse(allows(origin: row.origin, host: row.host, publicOrigin: nil, cors: []), row.description)
        }
    }

    func testOriginMatchingHostDoesNotHelpWhenSecFetchSiteSaysCrossSite() {
        XCTAssertFalse(allows(site: "cross-site", origin: "https://gw.internal", host: "gw.internal", publicOrigin: nil, cors: []))
    }

    func testUntrustedOriginWithoutSecFetchSiteIsRefused() {
        XCTAssertFalse(allows(origin: "https://evil.example"))
    }

    func testGatewayEndpointsAreCheckedEvenForSafeMethods() {
        XCTAssertFalse(CSRFCheck.allowsUnsafe(secFetchSite: "cross-site", origin: "https://evil.example", host: "api.example.com",
                                              publicOrigin: publicOrigin, corsAllows: { _ in false }))
        XCTAssertTrue(CSRFCheck.allowsUnsafe(secFetchSite: "same-origin", origin: nil, host: "api.example.com",
                                             publicOrigin: publicOrigin, corsAllows: { _ in false }))
        XCTAssertTrue(CSRFCheck.allowsUnsafe(secFetchSite: nil, origin: nil, host: nil, publicOrigin: nil, corsAllows: { _ in false }))
    }

    func testCORSIsAskedAboutTheOriginAsSent() {
        var asked: [String] = []
        _ = CSRFCheck.allows(method: "POST", secFetchSite: "cross-site", origin: "https://App.example.com", host: "h",
                             publicOrigin: nil, corsAllows: { asked.append($0); return false })
        XCTAssertEqual(asked, ["https://App.example.com"])
    }
}
