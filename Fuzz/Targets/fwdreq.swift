/// Fuzz target `fwdreq`: forward auth's description of the original request (SPEC §11),
/// ``ForwardAuthRequest``.
///
/// The input is one choice byte (the style: forwarded, original, envoy), then lines: the first
/// is the decision request's target, each other `Name: value` a header field (the method of an
/// envoy decision request is the first header's name). Invariants:
/// - `isEndpoint` agrees with a model: the path part equal to `forward_auth.path` (forwarded,
///   original), or that path followed by nothing, `/` or `?` (envoy);
/// - a description accepted has a token method, an origin-form target without spaces or
///   control bytes, a non-empty host; it never depends on a header of another convention
///   (removing every header the chosen style does not read changes nothing);
/// - a described target that `normalize` accepts is a fixed point of the path policy: its path
///   is exactly the described one, and normalizing it again changes nothing.
import GatehouseConfig
import GatehouseDecision
import GatehousePolicy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzForwardAuthRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let style: ForwardAuthSettings.Style = [.forwarded, .original, .envoy][Int(choice % 3)]
    let settings = ForwardAuthSettings(style: style)
    let text = String(decoding: input.rest(), as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let target = lines.first ?? ""
    var headers: [(String, String)] = []
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers.append((String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " })))
    }
    let method = headers.first?.0 ?? "GET"

    expect(ForwardAuthRequest.isEndpoint(target, settings: settings) == endpointModel(target, settings),
           "isEndpoint disagrees with the model: \(style) \(target.debugDescription)")

    let outcome = ForwardAuthRequest.describe(method: method, rawTarget: target, headers: HeaderPairs(headers),
                                              settings: settings)
    let own = ownHeaders(style)
    let onlyOwn = headers.filter { own.contains(lowercased($0.0)) }
    let again = ForwardAuthRequest.describe(method: method, rawTarget: target, headers: HeaderPairs(onlyOwn),
                                            settings: settings)
    expect(outcome == again, "another convention's header changed the outcome: \(style) \(headers)")
    guard case .success(let described) = outcome else { return 0 }
    let m = Array(described.method.utf8), t = Array(described.target.utf8), h = Array(described.host.utf8)
    expect(!m.isEmpty && m.allSatisfy { $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) },
           "method is not a token: \(described)")
    expect(t.first == UInt8(ascii: "/") && t.allSatisfy { $0 > 0x20 && $0 != 0x7F }, "target not origin-form: \(described)")
    expect(!h.isEmpty && h.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "host empty or with odd bytes: \(described)")

    for policy in PathPolicy.allCases {
        guard let normalized = ForwardAuthRequest.normalize(described, policy: policy) else { continue }
        let pathPart = t.prefix { $0 != UInt8(ascii: "?") }
        expect(Array(normalized.path.utf8) == Array(pathPart), "normalize changed the path: \(described) -> \(normalized)")
        expect(PathNormalizer.normalize(target: normalized.path, policy: policy)?.path == normalized.path,
               "the normalized path is not a fixed point: \(normalized)")
    }
    return 0
}

private func lowercased(_ name: String) -> String {
    String(decoding: name.utf8.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }, as: UTF8.self)
}

private func ownHeaders(_ style: ForwardAuthSettings.Style) -> Set<String> {
    switch style {
    case .forwarded: return ["x-forwarded-method", "x-forwarded-uri", "x-forwarded-host", "x-forwarded-proto"]
    case .original: return ["x-original-method", "x-original-uri", "x-forwarded-host"]
    case .envoy: return ["host"]
    }
}

private func endpointModel(_ target: String, _ settings: ForwardAuthSettings) -> Bool {
    let t = Array(target.utf8), p = Array(settings.path.utf8)
    guard t.starts(with: p) else { return false }
    let rest = t.dropFirst(p.count)
    switch settings.style {
    case .forwarded, .original:
        return rest.isEmpty || rest.first == UInt8(ascii: "?")
    case .envoy:
        return rest.isEmpty || rest.first == UInt8(ascii: "?") || rest.first == UInt8(ascii: "/")
    }
}
