/// Fuzz target `discovery`: an OpenID provider's discovery document (ProviderMetadata, SPEC
/// §14.1), read from bytes as fetched.
///
/// Invariants:
/// - an accepted document's `issuer` is exactly the expected one (the mix-up check never lets
///   another through);
/// - every endpoint taken is an http(s) URL of printable ASCII without spaces, backslashes,
///   user info or fragment, at most 2 KiB;
/// - a refusal message is at most a few hundred characters and holds no control character
///   (it goes to the log).
import GatehouseAuth

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDiscovery(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let expected = "https://sso.example.com/realms/main"
    do throws(ProviderMetadataError) {
        let metadata = try ProviderMetadata(json: bytes, expectedIssuer: expected)
        expect(metadata.issuer == expected, "accepted another issuer: \(metadata.issuer.debugDescription)")
        for url in [metadata.jwksURI, metadata.authorizationEndpoint, metadata.tokenEndpoint,
                    metadata.introspectionEndpoint, metadata.endSessionEndpoint].compactMap({ $0 }) {
            let utf8 = Array(url.utf8)
            expect(utf8.count <= 2048 && utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") },
                   "endpoint with a bad byte: \(url.debugDescription)")
            let lower = url.lowercased()
            expect(lower.hasPrefix("https://") || lower.hasPrefix("http://"), "endpoint not http(s): \(url.debugDescription)")
            expect(!url.contains("#"), "endpoint with a fragment: \(url.debugDescription)")
        }
    } catch {
        let text = error.description
        expect(!text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "control character in \(text.debugDescription)")
        expect(text.count <= 1200, "refusal message of \(text.count) characters")
    }
    return 0
}
