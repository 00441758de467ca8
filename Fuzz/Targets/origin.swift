/// Fuzz target `origin`: `cors.allow_origins` patterns against `Origin` values (SPEC §6).
///
/// The input is `PATTERN\nORIGIN` (without a newline: the pattern `https://*.example.com`
/// against the whole input). Invariants, checked against a small model written here:
/// - `https://*.example.com` matches only an origin of that scheme and port whose host ends in
///   `.example.com` after one or more non-empty labels (so never `example.com`,
///   `evilexample.com`, `a.example.com.evil.net`, nor anything with a path or user info);
/// - an exact pattern matches only an origin with the same scheme, host (ignoring case) and
///   port (default ports dropped), and it matches its own text (IPv6 literals aside: they are
///   compared in RFC 5952 form);
/// - `null` matches only `null`; `*` never matches `null` or a value without `://`.
import GatehousePolicy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOrigin(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let patternText: String, origin: String
    if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
        patternText = String(decoding: bytes[..<newline], as: UTF8.self)
        origin = String(decoding: bytes[(newline + 1)...], as: UTF8.self)
    } else {
        patternText = "https://*.example.com"
        origin = String(decoding: bytes, as: UTF8.self)
    }
    guard let pattern = try? OriginPattern(patternText) else { return 0 }
    let canonical = pattern.description
    let matched = pattern.matches(origin)
    let what = "pattern \(patternText.debugDescription) (\(canonical)) origin \(origin.debugDescription)"

    switch canonical {
    case "null":
        expect(matched == (origin == "null"), "null pattern: \(what)")
    case "*":
        if matched { expect(origin != "null" && origin.utf8.count > 3 && model(origin) != nil, "* matched a non-origin: \(what)") }
    default:
        guard let expected = model(canonical) else { violated("canonical pattern text is not an origin: \(what)") }
        if !expected.host.contains(UInt8(ascii: "[")), !expected.host.contains(UInt8(ascii: "*")) {
            expect(pattern.matches(canonical), "an exact pattern does not match its own text: \(what)")
        }
        guard matched else { return 0 }
        guard let actual = model(origin) else { violated("matched a value that is not an origin: \(what)") }
        expect(actual.scheme == expected.scheme && actual.port == expected.port, "scheme or port differ: \(what)")
        if expected.host.first == UInt8(ascii: "*") {
            let suffix = expected.host.dropFirst()  // ".example.com"
            expect(actual.host.count > suffix.count && actual.host.reversed().starts(with: suffix.reversed()),
                   "wildcard matched a host outside its domain: \(what)")
            let labels = actual.host.dropLast(suffix.count)
            expect(labels.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { label in
                !label.isEmpty && label.allSatisfy { isLabelByte($0) }
            }, "wildcard matched an empty or odd label: \(what)")
        } else if expected.host.first != UInt8(ascii: "[") {
            expect(actual.host == expected.host, "exact pattern matched another host: \(what)")
        }
    }
    return 0
}

/// `scheme://host[:port]`, lowercased, default port dropped; nil for anything else (a path,
/// query, fragment, user info, spaces or controls, a bad port).
private func model(_ text: String) -> (scheme: [UInt8], host: [UInt8], port: Int?)? {
    let bytes = Array(text.utf8).map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }
    guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[(colon + 1)...].starts(with: "//".utf8),
          colon > 0 else { return nil }
    let scheme = Array(bytes[..<colon])
    var authority = Array(bytes[(colon + 3)...])
    guard !authority.isEmpty, authority.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
          !authority.contains(where: { "/?#@\\".utf8.contains($0) }) else { return nil }
    var port: Int? = nil
    let hostEnd: Int
    if authority.first == UInt8(ascii: "[") {
        guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
        hostEnd = close + 1
    } else {
        hostEnd = authority.firstIndex(of: UInt8(ascii: ":")) ?? authority.count
    }
    if hostEnd < authority.count {
        guard authority[hostEnd] == UInt8(ascii: ":") else { return nil }
        let digits = authority[(hostEnd + 1)...]
        guard (1...5).contains(digits.count), digits.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let value = Int(String(decoding: digits, as: UTF8.self)), (1...65535).contains(value) else { return nil }
        let defaultPort: Int? = ["http", "ws"].contains(String(decoding: scheme, as: UTF8.self)) ? 80
            : ["https", "wss"].contains(String(decoding: scheme, as: UTF8.self)) ? 443 : nil
        port = value == defaultPort ? nil : value
    }
    authority.removeSubrange(hostEnd...)
    guard !authority.isEmpty else { return nil }
    return (scheme, authority, port)
}

private func isLabelByte(_ byte: UInt8) -> Bool {
    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
}
