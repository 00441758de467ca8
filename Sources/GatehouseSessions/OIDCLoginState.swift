import Crypto

/// One browser login attempt through an OpenID provider (SPEC §14.2): what the callback must
/// find again. Kept in the browser, in a cookie of its own per attempt (so parallel tabs work),
/// sealed with an HMAC so that it cannot be forged or altered.
///
/// The cookie is integrity-protected, not encrypted: the PKCE verifier and nonce it holds are
/// the browser's own login's, useless to anyone who cannot also present the code the provider
/// sends to that browser; it is `HttpOnly`, `SameSite=Lax`, limited to the callback path and
/// lives ``lifetimeSeconds``. The HMAC key is derived from the OIDC client secret, which every
/// instance of a deployment shares, so the callback may land on another instance.
public struct OIDCLoginState: Sendable, Equatable {
    /// OAuth 2.0 `state`: 32 random bytes, base64url (43 characters).
    public let state: String
    /// OpenID Connect `nonce`: 32 random bytes, base64url.
    public let nonce: String
    /// PKCE `code_verifier` (RFC 7636 §4.1): 32 random bytes, base64url (43 characters).
    public let verifier: String
    /// Where the browser goes after the login: a path checked by ``safeReturnTo(_:)``.
    public let returnTo: String
    /// Whole seconds after which the attempt is refused.
    public let expiresAt: Int64

    /// How long a login may take at the provider (10 minutes).
    public static let lifetimeSeconds: Int64 = 600
    /// The cookie name prefix; the attempt's own cookie adds the first 16 characters of `state`.
    public static let cookiePrefix = "gatehouse_oidc_"

    public init(state: String, nonce: String, verifier: String, returnTo: String, expiresAt: Int64) {
        self.state = state
        self.nonce = nonce
        self.verifier = verifier
        self.returnTo = returnTo
        self.expiresAt = expiresAt
    }

    /// A fresh attempt with new random `state`, `nonce` and verifier.
    public static func start(returnTo: String, now: Int64, using generator: inout some RandomNumberGenerator) -> OIDCLoginState {
        func random() -> String { SessionID.generate(using: &generator).value }
        return OIDCLoginState(state: random(), nonce: random(), verifier: random(), returnTo: safeReturnTo(returnTo),
                              expiresAt: now + lifetimeSeconds)
    }

    /// PKCE S256: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
    public var codeChallenge: String { SessionID.base64URL(Array(SHA256.hash(data: Array(verifier.utf8)))) }

    /// The attempt's cookie name.
    public static func cookieName(state: String) -> String { cookiePrefix + String(state.prefix(16)) }
    public var cookieName: String { Self.cookieName(state: state) }

    // MARK: sealing

    /// The HMAC key for the state cookies of `clientSecret`'s client.
    public static func key(clientSecret: [UInt8]) -> SymmetricKey {
        SymmetricKey(data: SHA256.hash(data: Array("gatehouse oidc state v1\n".utf8) + clientSecret))
    }

    /// `payload.mac`, both base64url; the payload is the five fields joined by newlines (none
    /// of them can hold one: random base64url, a checked path, a number).
    public func sealed(key: SymmetricKey) -> String {
        let payload = Array([state, nonce, verifier, returnTo, String(expiresAt)].joined(separator: "\n").utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: key)
        return SessionID.base64URL(payload) + "." + SessionID.base64URL(Array(mac))
    }

    /// The attempt in a cookie value, when its MAC is right, it has not expired and its fields
    /// are well formed; nil otherwise.
    public static func open(_ value: String, key: SymmetricKey, now: Int64) -> OIDCLoginState? {
        guard value.utf8.count <= 2048 else { return nil }
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Base64URL.decode(parts[0]), let mac = Base64URL.decode(parts[1]),
              HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else { return nil }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, let expiresAt = Int64(fields[4]), expiresAt > now,
              [fields[0], fields[1], fields[2]].allSatisfy(SessionID.isWellFormed),
              safeReturnTo(fields[3]) == fields[3] else { return nil }
        return OIDCLoginState(state: fields[0], nonce: fields[1], verifier: fields[2], returnTo: fields[3], expiresAt: expiresAt)
    }

    /// `text` when it is a path on this origin — `^/(?![/\\])`, printable ASCII only (no
    /// controls, spaces or non-ASCII bytes) and at most 2 KiB — else `/`. `//evil.com` and
    /// `/\evil.com` are read by browsers as another host: open redirects (SPEC §14.2).
    public static func safeReturnTo(_ text: String?) -> String {
        guard let text, text.utf8.count <= 2048 else { return "/" }
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "/"), bytes.count == 1 || (bytes[1] != UInt8(ascii: "/") && bytes[1] != UInt8(ascii: "\\")),
              bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return "/" }
        return text
    }
}

/// Base64url without padding, decoded (RFC 4648 §5); nil on any other character or a
/// non-canonical last character (RFC 4648 §3.5).
enum Base64URL {
    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            default: return nil
            }
            buffer = (buffer << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        // Canonical only: the bits left over must be zero, so one value has one spelling.
        guard bits < 6, buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
