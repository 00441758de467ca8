/// The CSRF check of SPEC §7.2, the algorithm of Go's `net/http.CrossOriginProtection`
/// (Go 1.25), using the Fetch metadata header `Sec-Fetch-Site` and `Origin`
/// (https://fetch.spec.whatwg.org/ and https://www.w3.org/TR/fetch-metadata/). In order:
///
/// 1. a safe method (`GET`, `HEAD`, `OPTIONS`, exact case) passes — except through
///    ``allowsUnsafe(secFetchSite:origin:host:publicOrigin:corsAllows:)``, which the login,
///    keepalive and logout endpoints use whatever their method;
/// 2. `Sec-Fetch-Site: same-origin` or `none` passes;
/// 3. an `Origin` equal to `public_origin`, or allowed by the CORS policy that applies, passes;
/// 4. neither `Sec-Fetch-Site` nor `Origin` (a non-browser client) passes;
/// 5. no `Sec-Fetch-Site`, and `Origin`'s host[:port] equal to the request's `Host`, passes
///    (an older browser, same origin);
/// 6. anything else is refused: 403 `csrf_rejected`.
///
/// An empty header counts as absent (as Go's `Header.Get` does). Differences from Go, both
/// stricter or equal: hosts compare ASCII case-insensitively, and an `Origin` with userinfo,
/// a path or no `scheme://` never matches `Host`. `public_origin` matches case-insensitively
/// and without a trailing `/`.
public enum CSRFCheck {
    /// The check for a cookie-authenticated request: safe methods pass, others go through the
    /// rules. `corsAllows(origin)` says whether the CORS policy that applies allows `origin`.
    public static func allows(method: String, secFetchSite: String?, origin: String?, host: String?,
                              publicOrigin: String?, corsAllows: (String) -> Bool) -> Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS":
            return true
        default:
            return allowsUnsafe(secFetchSite: secFetchSite, origin: origin, host: host,
                                publicOrigin: publicOrigin, corsAllows: corsAllows)
        }
    }

    /// The rules without the safe-method pass, for the login, keepalive and logout endpoints.
    public static func allowsUnsafe(secFetchSite: String?, origin: String?, host: String?,
                                    publicOrigin: String?, corsAllows: (String) -> Bool) -> Bool {
        let site = nonEmpty(secFetchSite)
        let origin = nonEmpty(origin)
        if let site, site == "same-origin" || site == "none" { return true }
        if let origin, isTrusted(origin, publicOrigin: publicOrigin, corsAllows: corsAllows) { return true }
        guard site == nil else { return false }  // cross-site, same-site or unknown, untrusted origin
        guard let origin else { return true }     // neither header: not a browser
        guard let host = nonEmpty(host), let originHost = authority(of: origin) else { return false }
        return equalsIgnoringASCIICase(originHost, host)
    }

    private static func isTrusted(_ origin: String, publicOrigin: String?, corsAllows: (String) -> Bool) -> Bool {
        if var publicOrigin = nonEmpty(publicOrigin) {
            if publicOrigin.hasSuffix("/") { publicOrigin.removeLast() }
            if equalsIgnoringASCIICase(origin, publicOrigin) { return true }
        }
        return corsAllows(origin)
    }

    /// `host[:port]` of `scheme://host[:port]`; nil for anything else (`null`, a path,
    /// userinfo, no scheme).
    static func authority(of origin: String) -> String? {
        let bytes = Array(origin.utf8)
        let separator = Array("://".utf8)
        guard let start = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let scheme = bytes[..<start]
        let authority = bytes[(start + separator.count)...]
        guard !scheme.isEmpty, scheme.allSatisfy(isSchemeByte), !authority.isEmpty,
              !authority.contains(where: { "/?#@\\".utf8.contains($0) || $0 < 0x21 || $0 > 0x7E })
        else { return nil }
        return String(decoding: authority, as: UTF8.self)
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    private static func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    private static func equalsIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.count == rhs.utf8.count && zip(lhs.utf8, rhs.utf8).allSatisfy { lower($0) == lower($1) }
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
