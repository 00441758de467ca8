/// Why an OpenID provider's discovery document was refused.
public struct ProviderMetadataError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What the gateway takes from an OpenID provider's discovery document
/// (`{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 §3, §4; SPEC §14.1).
///
/// Strict where it matters: the document is one JSON object parsed by ``JSONParser`` (duplicate
/// members refused), `issuer` must equal the configured issuer *exactly* (§4.3: a document that
/// names another issuer is refused — the mix-up attack), `jwks_uri` is required, and every
/// endpoint taken must be an absolute `https://` or `http://` URL with a host and without user
/// info, fragment, whitespace or control characters. Members the gateway does not use are
/// ignored, whatever their type (providers add many).
public struct ProviderMetadata: Sendable, Equatable {
    public let issuer: String
    public let jwksURI: String
    public let authorizationEndpoint: String?
    public let tokenEndpoint: String?
    public let introspectionEndpoint: String?
    public let endSessionEndpoint: String?

    public init(issuer: String, jwksURI: String, authorizationEndpoint: String? = nil, tokenEndpoint: String? = nil,
                introspectionEndpoint: String? = nil, endSessionEndpoint: String? = nil) {
        self.issuer = issuer
        self.jwksURI = jwksURI
        self.authorizationEndpoint = authorizationEndpoint
        self.tokenEndpoint = tokenEndpoint
        self.introspectionEndpoint = introspectionEndpoint
        self.endSessionEndpoint = endSessionEndpoint
    }

    /// Parses `bytes` and checks them against the configured `expectedIssuer`.
    public init(json bytes: [UInt8], expectedIssuer: String) throws(ProviderMetadataError) {
        let document: JSONValue
        do { document = try JSONParser.parse(bytes) } catch { throw ProviderMetadataError("not valid JSON: \(error)") }
        guard case .object(let object) = document else { throw ProviderMetadataError("the document is not a JSON object") }
        guard case .string(let issuer)? = object["issuer"] else { throw ProviderMetadataError("missing \"issuer\" string") }
        guard issuer == expectedIssuer else {
            throw ProviderMetadataError("its issuer \(Self.shown(issuer)) is not the configured issuer \(Self.shown(expectedIssuer))")
        }
        guard let jwks = try Self.endpoint(object, "jwks_uri") else { throw ProviderMetadataError("missing \"jwks_uri\"") }
        self.init(issuer: issuer, jwksURI: jwks,
                  authorizationEndpoint: try Self.endpoint(object, "authorization_endpoint"),
                  tokenEndpoint: try Self.endpoint(object, "token_endpoint"),
                  introspectionEndpoint: try Self.endpoint(object, "introspection_endpoint"),
                  endSessionEndpoint: try Self.endpoint(object, "end_session_endpoint"))
    }

    /// The discovery URL of `issuer` (OpenID Connect Discovery 1.0 §4: a terminating `/` of the
    /// issuer is removed before `/.well-known/openid-configuration` is appended).
    public static func discoveryURL(issuer: String) -> String {
        var base = Substring(issuer)
        while base.hasSuffix("/") { base = base.dropLast() }
        return base + "/.well-known/openid-configuration"
    }

    /// An optional endpoint member: absent is nil; present, it must be a usable URL.
    private static func endpoint(_ object: JSONObject, _ name: String) throws(ProviderMetadataError) -> String? {
        guard let value = object[name] else { return nil }
        guard case .string(let url) = value else { throw ProviderMetadataError("\"\(name)\" is not a string") }
        guard isUsableURL(url) else { throw ProviderMetadataError("\"\(name)\" is not an absolute http(s) URL: \(shown(url))") }
        return url
    }

    /// `http://` or `https://`, a non-empty host, no user info, no fragment, printable ASCII
    /// without spaces or backslashes, at most 2 KiB.
    static func isUsableURL(_ url: String) -> Bool {
        let bytes = Array(url.utf8)
        guard bytes.count <= 2048, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else { return false }
        let lower = url.lowercased()
        guard let scheme = ["https://", "http://"].first(where: lower.hasPrefix) else { return false }
        let rest = url.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return !authority.isEmpty && !authority.hasPrefix(":") && !authority.contains("@") && !url.contains("#")
    }

    /// A value for a log line: quoted, cut at 80 characters, control characters escaped (so two
    /// of them in one message stay under the 1,200 characters the fuzz target allows).
    static func shown(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(80) {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\"" || scalar == "\\" {
                out += scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : "\\\(scalar)"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + (text.unicodeScalars.count > 80 ? "…\"" : "\"")
    }
}
