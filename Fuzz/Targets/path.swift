/// Fuzz target `path`: PathNormalizer (SPEC §4.1, §3.2) on arbitrary request targets.
///
/// Invariants, for both policies:
/// - a normalized path starts with `/`, has no `.` or `..` segment (nor `.;`/`..;`), no `//`,
///   no raw byte the policy refuses, and only upper-case escapes of bytes that are neither
///   unreserved (those are decoded) nor `/`, `\` or a control;
/// - normalizing the output again changes nothing;
/// - the query is the target's text after the first `?`, unchanged;
/// - strict and lenient agree wherever strict accepts; where only lenient accepts, the path
///   holds `;`, `%25`, or escaped bytes that are not valid UTF-8 (SPEC §3.2: strict refuses
///   overlong and other invalid escaped UTF-8, lenient forwards it for Latin-1 upstreams).
import GatehousePolicy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPath(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let target = FuzzInput.text(data, size)
    let strict = PathNormalizer.normalize(target: target, policy: .strict)
    let lenient = PathNormalizer.normalize(target: target, policy: .lenient)
    if let strict { checkNormalized(strict, of: target, policy: .strict) }
    if let lenient { checkNormalized(lenient, of: target, policy: .lenient) }
    if let strict {
        expect(lenient == strict, "strict accepted \(target.debugDescription) as \(strict), lenient gave \(String(describing: lenient))")
    } else if lenient != nil {
        expect(onlyLenientMayAccept(target),
               "lenient accepted \(target.debugDescription), strict refused it, and it has no `;`, `%25` or invalid escaped UTF-8")
    }
    return 0
}

private func checkNormalized(_ result: NormalizedTarget, of target: String, policy: PathPolicy) {
    let path = Array(result.path.utf8)
    let what = "\(policy) \(target.debugDescription) -> \(result.path.debugDescription)"
    expect(path.first == UInt8(ascii: "/"), "no leading slash: \(what)")
    var index = 0
    while index < path.count {
        let byte = path[index]
        if byte == UInt8(ascii: "%") {
            expect(index + 2 < path.count, "cut escape: \(what)")
            let high = upperHex(path[index + 1]), low = upperHex(path[index + 2])
            expect(high != nil && low != nil, "escape not upper-case hex: \(what)")
            let value = high! << 4 | low!
            expect(!isUnreserved(value), "unreserved byte left encoded: \(what)")
            expect(value >= 0x20 && value != 0x7F && value != UInt8(ascii: "/") && value != UInt8(ascii: "\\"),
                   "refused escape in output: \(what)")
            expect(policy == .lenient || value != UInt8(ascii: "%"), "%25 in strict output: \(what)")
            index += 3
            continue
        }
        expect(byte > 0x20 && byte < 0x7F, "control, space or non-ASCII byte in output: \(what)")
        expect(byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "#") && byte != UInt8(ascii: "?"),
               "backslash, # or ? in output path: \(what)")
        expect(policy == .lenient || byte != UInt8(ascii: ";"), "; in strict output: \(what)")
        index += 1
    }
    let segments = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
    for (position, segment) in segments.enumerated() {
        expect(!segment.isEmpty || position == segments.count - 1, "empty segment (//): \(what)")
        let name = segment.prefix { $0 != UInt8(ascii: ";") }
        expect(!name.elementsEqual(".".utf8) && !name.elementsEqual("..".utf8), "dot segment in output: \(what)")
    }
    // Normalizing the output changes nothing; a query comes back as it went in.
    let again = PathNormalizer.normalize(target: result.path, policy: policy)
    expect(again == NormalizedTarget(path: result.path, query: nil, authority: nil),
           "not idempotent: \(what) -> \(String(describing: again))")
    // Bytes, not Characters: a `?` followed by a combining mark is one Character.
    let bytes = Array(target.utf8)
    if let query = result.query {
        let suffix = bytes.firstIndex(of: UInt8(ascii: "?")).map { bytes[($0 + 1)...] }
        expect(suffix?.elementsEqual(query.utf8) == true, "query changed: \(what) query \(query.debugDescription)")
    } else {
        expect(!bytes.contains(UInt8(ascii: "?")), "query lost: \(what)")
    }
    expect((result.authority == nil) == (target.utf8.first == UInt8(ascii: "/")), "authority without absolute form: \(what)")
}

/// Whether the path part (before `?`, after an absolute form's authority) holds what lenient
/// alone accepts.
private func onlyLenientMayAccept(_ target: String) -> Bool {
    let bytes = Array(target.utf8.prefix { $0 != UInt8(ascii: "?") })
    if bytes.contains(UInt8(ascii: ";")) { return true }
    if bytes.indices.contains(where: { bytes[$0...].starts(with: "%25".utf8) }) { return true }
    var decoded: [UInt8] = []
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count,
           let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
            decoded.append(high << 4 | low)
            index += 3
        } else {
            decoded.append(bytes[index])
            index += 1
        }
    }
    return String(validating: decoded, as: UTF8.self) == nil
}

private func hex(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}

private func upperHex(_ byte: UInt8) -> UInt8? {
    byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f") ? nil : hex(byte)
}

private func isUnreserved(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}
