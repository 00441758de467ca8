/// Fuzz target `traceparent`: the strict W3C `traceparent` parser (SPEC §15.3).
///
/// Invariants, checked against a model written here from the specification's grammar:
/// - the parser accepts exactly `00-` 32 lowercase hex `-` 16 lowercase hex `-` 2 lowercase
///   hex, with a trace id and a parent id that are not all zero (55 bytes, nothing around it);
/// - an accepted value is written back byte for byte (`header`), and the C-string entry point
///   agrees with the byte one;
/// - every trace the gateway makes (any seed, any counter) parses back to itself.
import GatehouseCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTraceparent(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let parsed = TraceContext.parse(UnsafeRawBufferPointer(bytes))
    expect((parsed != nil) == model(Array(bytes)), "parser and model disagree on \(Array(bytes))")
    if let parsed {
        expect(Array(parsed.header.utf8) == Array(bytes), "not written back as received: \(Array(bytes))")
    }
    if !bytes.contains(0) {
        let viaC = (Array(bytes) + [0]).withUnsafeBufferPointer {
            $0.baseAddress!.withMemoryRebound(to: CChar.self, capacity: $0.count) { TraceContext.parse(cString: $0) }
        }
        expect(viaC == parsed, "the C-string parser disagrees on \(Array(bytes))")
    }
    if size >= 16 {
        var seed: UInt64 = 0, counter: UInt64 = 0
        for i in 0..<8 { seed = seed << 8 | UInt64(bytes[i]); counter = counter << 8 | UInt64(bytes[8 + i]) }
        let made = TraceContext.made(seed: seed, counter: counter)
        expect(TraceContext.parse(made.header) == made, "a made trace does not parse back: \(made.header)")
    }
    return 0
}

private func model(_ b: [UInt8]) -> Bool {
    func hex(_ range: Range<Int>) -> Bool {
        b[range].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
    guard b.count == 55, b[0] == 0x30, b[1] == 0x30, b[2] == 0x2D, b[35] == 0x2D, b[52] == 0x2D,
          hex(3..<35), hex(36..<52), hex(53..<55) else { return false }
    return b[3..<35].contains { $0 != 0x30 } && b[36..<52].contains { $0 != 0x30 }
}
