import XCTest
@testable import GatehouseConfig

/// Tables of listen addresses, upstream targets, origins and route hosts.
final class AddressSyntaxTests: XCTestCase {
    func testListenAddresses() {
        let cases: [(String, ListenAddress?)] = [
            ("0.0.0.0:8080", ListenAddress(host: "0.0.0.0", port: 8080)),
            ("[::1]:9901", ListenAddress(host: "::1", port: 9901)),
            ("[::]:80", ListenAddress(host: "::", port: 80)),
            ("LocalHost:1", ListenAddress(host: "localhost", port: 1)),
            ("gw_1.internal:65535", ListenAddress(host: "gw_1.internal", port: 65535)),
            ("0.0.0.0:0", nil), ("0.0.0.0:65536", nil), ("0.0.0.0:+80", nil), ("0.0.0.0", nil),
            ("8080", nil), (":8080", nil), ("::1:8080", nil), ("[::1]", nil), ("[::1]8080", nil),
            ("[nope]:80", nil), ("256.0.0.1:80", nil), ("1.2.3:80", nil), ("-bad.example:80", nil),
            ("a..b:80", nil), ("host name:80", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try? AddressSyntax.listenAddress(text).get(), expected, text)
        }
    }

    func testUpstreamTargets() {
        let cases: [(String, UpstreamTarget?)] = [
            ("http://127.0.0.1:9000", UpstreamTarget(host: "127.0.0.1", port: 9000)),
            ("http://api.internal", UpstreamTarget(host: "api.internal", port: 80)),
            ("HTTP://API.internal:81", UpstreamTarget(host: "api.internal", port: 81)),
            ("http://[::1]:9000", UpstreamTarget(host: "::1", port: 9000)),
            ("https://h", UpstreamTarget(host: "h", port: 443, tls: true)),
            ("HTTPS://api.internal:8443", UpstreamTarget(host: "api.internal", port: 8443, tls: true)),
            ("http://h/", nil), ("http://h/api", nil), ("http://h?x", nil), ("http://u@h", nil),
            ("https://h/", nil), ("https://u@h", nil), ("h:80", nil), ("http://", nil), ("https://", nil),
            ("http://::1:80", nil), ("ftp://h", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try? AddressSyntax.upstreamTarget(text).get(), expected, text)
        }
    }

    func testJWKSURLs() {
        let cases: [(String, Bool)] = [
            ("https://idp.example.com/.well-known/jwks.json", true), ("http://idp.internal:8080/jwks?tenant=a", true),
            ("HTTPS://IdP.example.com", true), ("https://[::1]:8443/keys", true), ("http://10.0.0.1/keys", true),
            ("ftp://idp/jwks", false), ("idp.example.com/jwks", false), ("https://", false), ("https:///jwks", false),
            ("https://u:p@idp/jwks", false), ("https://idp/jwks#keys", false), ("https://idp/a b", false),
            ("https://idp:0/jwks", false), ("https://::1/jwks", false), ("https://idp\\x/jwks", false),
        ]
        for (text, valid) in cases {
            XCTAssertEqual((try? AddressSyntax.fetchURL(text).get()) != nil, valid, text)
        }
    }

    func testLoginRedirectsStayOnThisOriginOrUseHTTPS() {
        let cases: [(String, Bool)] = [
            ("/login.html", true), ("/login?next=app", true), ("/", true), ("https://login.example.com/start", true),
            ("https://login.example.com", true), ("HTTPS://login.example.com/x", true),
            ("login.html", false), ("//evil.example/x", false), ("/\\evil.example", false), ("\\\\evil", false),
            ("http://login.example.com/", false), ("https://", false), ("https://u@login.example/", false),
            ("/login page", false), ("/login\n", false), ("/login#top", false), ("javascript:alert(1)", false), ("", false),
        ]
        for (text, valid) in cases {
            XCTAssertEqual((try? AddressSyntax.loginRedirect(text).get()) != nil, valid, text)
        }
    }

    func testATargetsHostHeaderLeavesOutTheSchemesDefaultPort() {
        let cases: [(UpstreamTarget, String)] = [
            (UpstreamTarget(host: "h", port: 80), "h"), (UpstreamTarget(host: "h", port: 443), "h:443"),
            (UpstreamTarget(host: "h", port: 443, tls: true), "h"), (UpstreamTarget(host: "h", port: 80, tls: true), "h:80"),
            (UpstreamTarget(host: "::1", port: 8443, tls: true), "[::1]:8443"),
        ]
        for (target, expected) in cases { XCTAssertEqual(target.hostHeader, expected, target.description) }
    }

    func testOriginsAreNormalizedAsBrowsersSendThem() {
        let cases: [(String, String?)] = [
            ("https://api.example.com", "https://api.example.com"),
            ("HTTPS://API.Example.com:443", "https://api.example.com"),
            ("http://a.example:80", "http://a.example"),
            ("http://a.example:8080", "http://a.example:8080"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("https://api.example.com/", nil), ("https://api.example.com/x", nil), ("api.example.com", nil),
            ("ftp://a.example", nil), ("https://u@a.example", nil), ("https://", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try? AddressSyntax.origin(text).get(), expected, text)
        }
    }

    func testRouteHosts() {
        let cases: [(String, String?)] = [
            ("API.Example.com", "api.example.com"), ("10.0.0.1", "10.0.0.1"), ("[::1]", "[::1]"),
            ("api.example.com:8443", nil), ("", nil), ("::1", nil),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(try? AddressSyntax.routeHost(text).get(), expected, text)
        }
    }

    func testMethodTokensFollowRFC9110() {
        for method in ["GET", "PROPFIND", "M-SEARCH", "X_Y"] { XCTAssertTrue(HTTPToken.isToken(method), method) }
        for method in ["", "BAD METHOD", "GET/1", "G\u{E9}T", "A(B)"] { XCTAssertFalse(HTTPToken.isToken(method), method) }
    }
}
