/// SPEC §2 `jwt.issuers[].introspection`, validated (SPEC §14.3): the one issuer whose opaque
/// Bearer tokens are checked at its provider's introspection endpoint (found by discovery).
public struct IntrospectionSettings: Sendable, Equatable {
    /// The issuer's name in `jwt.issuers` (it has `discovery: true`).
    public var issuerName: String
    /// HTTP Basic client authentication (RFC 7662 §2.1, RFC 6749 §2.3.1).
    public var clientID: String
    public var clientSecret: [UInt8]
    /// The longest an active answer is used (`min(exp, cache)`); inactive answers: 10 s.
    public var cacheSeconds: Int64

    public init(issuerName: String, clientID: String, clientSecret: [UInt8], cacheSeconds: Int64) {
        self.issuerName = issuerName
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.cacheSeconds = cacheSeconds
    }

    /// The `Authorization` header value: `Basic base64(urlencode(id) ":" urlencode(secret))`
    /// (RFC 6749 §2.3.1 form-encodes both before Basic encoding).
    public var authorization: String { Self.basicAuthorization(clientID: clientID, secret: clientSecret) }

    /// HTTP Basic client authentication of OAuth 2.0 (RFC 6749 §2.3.1): both parts form-encoded.
    public static func basicAuthorization(clientID: String, secret: [UInt8]) -> String {
        "Basic " + base64(formEncode(Array(clientID.utf8)) + [UInt8(ascii: ":")] + formEncode(secret))
    }

    /// `application/x-www-form-urlencoded` bytes of `bytes` (unreserved kept, space as `+`).
    public static func formEncode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(byte)
            case UInt8(ascii: " "): out.append(UInt8(ascii: "+"))
            default: out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return out
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let chunk = (UInt32(bytes[i]) << 16) | (n > 1 ? UInt32(bytes[i + 1]) << 8 : 0) | (n > 2 ? UInt32(bytes[i + 2]) : 0)
            for j in 0..<4 {
                out.append(j <= n ? table[Int((chunk >> (18 - 6 * UInt32(j))) & 63)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
