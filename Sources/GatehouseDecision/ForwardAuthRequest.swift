#if canImport(Glibc)
import Glibc
#endif
import GatehouseCore
import GatehouseConfig
import GatehousePolicy

/// The original request as a front proxy describes it to the forward-auth endpoint (SPEC §11).
public struct DescribedRequest: Sendable, Equatable {
    public var method: String
    /// Path and query in origin-form, exactly as described (not normalized yet).
    public var target: String
    public var host: String

    public init(method: String, target: String, host: String) {
        self.method = method
        self.target = target
        self.host = host
    }
}

/// Reads a decision request of forward auth (SPEC §11): whether a request is for the endpoint,
/// and what original request it describes under `forward_auth.style`. Pure; byte-wise.
///
/// Only the chosen style's headers count. Each must be present exactly once (a proxy that
/// appends to a client's copy instead of overwriting it leaves two): otherwise the description
/// is refused as `forward_auth_incomplete`. The described target must be origin-form and one
/// that the path policy leaves as it is (``normalize(_:policy:)``): the gateway cannot know
/// which form the front proxy forwards.
public enum ForwardAuthRequest {
    /// Longest method accepted in a description (the registered ones are at most 17 bytes).
    static let maxMethodBytes = 32

    /// Whether `rawTarget`, the decision request's target as received, is the endpoint:
    /// `forwarded`/`original` match the path alone (a query is ignored: Caddy 2.6 appends the
    /// original one), `envoy` the path as a prefix followed by `/`, `?` or nothing.
    public static func isEndpoint(_ rawTarget: String, settings: ForwardAuthSettings) -> Bool {
        // Runs on every request when forward auth is on: the first byte after the prefix
        // decides most of them (a public path differs at once), then a byte compare.
        var target = rawTarget, path = settings.path
        return target.withUTF8 { t in
            path.withUTF8 { p in
                guard t.count >= p.count, memcmp(t.baseAddress!, p.baseAddress!, p.count) == 0 else { return false }
                guard t.count > p.count else { return true }
                switch (settings.style, t[p.count]) {
                case (_, UInt8(ascii: "?")): return true
                case (.envoy, UInt8(ascii: "/")): return true
                default: return false
                }
            }
        }
    }

    /// The described request, or why the description is refused (`forward_auth_incomplete`).
    /// `method` and `rawTarget` are the decision request's own; `headers` its header fields.
    public static func describe(method: String, rawTarget: String, headers: some HeaderSource,
                                settings: ForwardAuthSettings) -> Result<DescribedRequest, Reason> {
        let described: DescribedRequest?
        switch settings.style {
        case .forwarded:
            guard let proto = single(headers, "x-forwarded-proto"), isProto(proto) else { return .failure(.forwardAuthIncomplete) }
            described = make(method: single(headers, "x-forwarded-method"), target: single(headers, "x-forwarded-uri"),
                             host: single(headers, "x-forwarded-host"))
        case .original:
            described = make(method: single(headers, "x-original-method"), target: single(headers, "x-original-uri"),
                             host: single(headers, "x-forwarded-host"))
        case .envoy:
            let suffix = String(Substring(rawTarget.utf8.dropFirst(settings.path.utf8.count)))
            described = make(method: method, target: suffix, host: single(headers, "host"))
        }
        return described.map { .success($0) } ?? .failure(.forwardAuthIncomplete)
    }

    /// The described target through the path policy: the normalized target when the policy
    /// accepts it and leaves its path unchanged, else nil (refused as `path_rejected`).
    public static func normalize(_ described: DescribedRequest, policy: PathPolicy) -> NormalizedTarget? {
        guard let target = PathNormalizer.normalize(target: described.target, policy: policy), target.authority == nil
        else { return nil }
        let utf8 = described.target.utf8
        let pathEnd = utf8.firstIndex(of: UInt8(ascii: "?")) ?? utf8.endIndex
        guard target.path.utf8.elementsEqual(utf8[..<pathEnd]) else { return nil }
        return target
    }

    private static func make(method: String?, target: String?, host: String?) -> DescribedRequest? {
        guard let method, isMethod(method), let target, isTarget(target), let host, isHost(host) else { return nil }
        return DescribedRequest(method: method, target: target, host: host)
    }

    private static func single(_ headers: some HeaderSource, _ lowercasedName: StaticString) -> String? {
        headers.single(lowercasedName)
    }

    /// An RFC 9110 §9.1 method: a token.
    static func isMethod(_ value: String) -> Bool {
        let utf8 = value.utf8
        return !utf8.isEmpty && utf8.count <= maxMethodBytes && utf8.allSatisfy(isTokenByte)
    }

    /// Origin-form (`/…`), no spaces or control bytes (the path policy judges the rest).
    static func isTarget(_ value: String) -> Bool {
        let utf8 = value.utf8
        return utf8.first == UInt8(ascii: "/") && utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F }
    }

    /// A host or `host:port`, bracketed IPv6 included: no spaces, controls or delimiters that
    /// have no place in an authority (`/ ? # @ \`).
    static func isHost(_ value: String) -> Bool {
        let utf8 = value.utf8
        return !utf8.isEmpty && utf8.count <= 255 && utf8.allSatisfy { byte in
            switch byte {
            case 0...0x20, 0x7F...0xFF, UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "@"),
                 UInt8(ascii: "\\"), UInt8(ascii: "\""):
                return false
            default:
                return true
            }
        }
    }

    static func isProto(_ value: String) -> Bool {
        let lowered = value.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }
        return ["http", "https", "ws", "wss"].contains { $0.utf8.elementsEqual(lowered) }
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
