import GatehouseAuth
import XCTest

/// The discovery document reader (SPEC §14.1, OpenID Connect Discovery 1.0 §3, §4.3).
final class ProviderMetadataTests: XCTestCase {
    private let issuer = "https://sso.example.com/realms/main"

    private func parse(_ text: String, expected: String? = nil) throws -> ProviderMetadata {
        try ProviderMetadata(json: Array(text.utf8), expectedIssuer: expected ?? issuer)
    }

    private func refusal(_ text: String, expected: String? = nil) -> String? {
        do { _ = try parse(text, expected: expected); return nil } catch { return "\(error)" }
    }

    func testTakesTheEndpointsAndIgnoresOtherMembers() throws {
        let metadata = try parse("""
            {"issuer": "\(issuer)", "jwks_uri": "https://sso.example.com/certs",
             "authorization_endpoint": "https://sso.example.com/auth", "token_endpoint": "https://sso.example.com/token",
             "introspection_endpoint": "https://sso.example.com/introspect",
             "end_session_endpoint": "http://127.0.0.1:8080/logout?x=1",
             "response_types_supported": ["code"], "claims_parameter_supported": true, "other": {"nested": [1, null]}}
            """)
        XCTAssertEqual(metadata, ProviderMetadata(issuer: issuer, jwksURI: "https://sso.example.com/certs",
                                                  authorizationEndpoint: "https://sso.example.com/auth",
                                                  tokenEndpoint: "https://sso.example.com/token",
                                                  introspectionEndpoint: "https://sso.example.com/introspect",
                                                  endSessionEndpoint: "http://127.0.0.1:8080/logout?x=1"))
    }

    func testOptionalEndpointsMayBeAbsent() throws {
        let metadata = try parse(#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/j"}"#)
        XCTAssertNil(metadata.introspectionEndpoint)
        XCTAssertNil(metadata.tokenEndpoint)
    }

    func testIssuerMustMatchExactly() {
        // The mix-up attack: a document naming another issuer, or the same one spelled differently.
        for other in ["https://evil.example.com/realms/main", "https://sso.example.com/realms/main/",
                      "https://SSO.example.com/realms/main", "https://sso.example.com/realms/mai", " https://sso.example.com/realms/main",
                      "https://sso.example.com/realms/main\u{0}"] {
            let json = #"{"issuer": "\#(other.replacingOccurrences(of: "\u{0}", with: "\\u0000"))", "jwks_uri": "https://k.example/j"}"#
            let why = refusal(json)
            XCTAssertNotNil(why, other)
            XCTAssertTrue(why?.contains("is not the configured issuer") == true, "\(other): \(why ?? "")")
        }
    }

    func testRefusesHostileDocuments() {
        let cases: [(String, String)] = [
            ("", "not valid JSON"),
            ("[]", "not a JSON object"),
            (#"{"jwks_uri": "https://k.example/j"}"#, "missing \"issuer\""),
            (#"{"issuer": 7, "jwks_uri": "https://k.example/j"}"#, "missing \"issuer\""),
            (#"{"issuer": "https://sso.example.com/realms/main"}"#, "missing \"jwks_uri\""),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": ["https://k.example/j"]}"#, "not a string"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "file:///etc/passwd"}"#, "not an absolute http(s) URL"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "/certs"}"#, "not an absolute http(s) URL"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://user@k.example/j"}"#, "not an absolute"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/j#x"}"#, "not an absolute"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/a b"}"#, "not an absolute"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/\r\nX: y"}"#, "not an absolute"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https:///j"}"#, "not an absolute"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/j", "token_endpoint": null}"#, "not a string"),
            (#"{"issuer": "https://sso.example.com/realms/main", "issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/j"}"#, "not valid JSON"),
            (#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "https://k.example/j"} {}"#, "not valid JSON"),
        ]
        for (json, expected) in cases {
            let why = refusal(json)
            XCTAssertTrue(why?.contains(expected) == true, "\(json): \(why ?? "accepted")")
        }
        let long = "https://k.example/" + String(repeating: "a", count: 3000)
        XCTAssertNotNil(refusal(#"{"issuer": "https://sso.example.com/realms/main", "jwks_uri": "\#(long)"}"#))
    }

    func testRefusalMessagesEscapeControlCharactersAndAreBounded() {
        let why = refusal(#"{"issuer": "x\u001b[31m\#(String(repeating: "y", count: 500))", "jwks_uri": "https://k.example/j"}"#) ?? ""
        XCTAssertFalse(why.unicodeScalars.contains { $0.value < 0x20 }, why)
        XCTAssertLessThan(why.count, 400)
    }

    func testDiscoveryURLDropsATerminatingSlash() {
        XCTAssertEqual(ProviderMetadata.discoveryURL(issuer: "https://a.example/realms/x/"),
                       "https://a.example/realms/x/.well-known/openid-configuration")
        XCTAssertEqual(ProviderMetadata.discoveryURL(issuer: "https://a.example"), "https://a.example/.well-known/openid-configuration")
        XCTAssertEqual(ProviderMetadata.discoveryURL(issuer: "https://a.example/"), "https://a.example/.well-known/openid-configuration")
    }
}
