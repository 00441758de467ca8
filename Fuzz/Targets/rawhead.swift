// fuzz-requires: Sources/GatehousePolicy/RawHeadScanner.swift
/// Fuzz target `rawhead`: the raw request-head scanner (RawHeadScanner, SPEC §3.2) and what
/// it lets through to evhttp and the head checks.
///
/// Input: two bytes choosing a split point, then the bytes a client sends (request line, header
/// lines, maybe a body). Invariants:
/// - the verdict is the same whether the bytes come in one piece, in two split at the chosen
///   point, or one at a time;
/// - a complete head ends with LF at the length given, its request line has no NUL, HTAB or
///   CR (other control bytes in its target are refused by the path policy in both modes),
///   its field lines no control byte but HTAB (CR only right before LF), and no field line
///   starts with SP or HTAB (obs-fold);
/// - end to end (defect 1 of issue 9, header injection through folded lines): when the head is
///   complete, evhttp parses its header lines and RequestHead.problem accepts them, no header
///   value holds a control byte other than HTAB.
import CLibevent
import GatehousePolicy
@testable import GatehouseServer

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRawHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let split = Int(input.byte()) << 8 | Int(input.byte())
    let bytes = UnsafeRawBufferPointer(input.rest())
    let count = bytes.count
    let at = count == 0 ? 0 : split % (count + 1)
    let what = "split at \(at) of \(Array(bytes).hex)"

    let whole = RawHeadScanner.scan(bytes)
    var two = RawHeadScanner()
    two.feed(UnsafeRawBufferPointer(rebasing: bytes[..<at]))
    expect(two.feed(UnsafeRawBufferPointer(rebasing: bytes[at...])) == whole, "split in two differs: \(what): \(whole) vs \(two.current)")
    if count <= 4096 {
        var single = RawHeadScanner()
        for index in 0..<count { single.feed(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + 1)])) }
        expect(single.current == whole, "byte by byte differs: \(what): \(whole) vs \(single.current)")
    }
    guard case .complete(let length) = whole else { return 0 }
    expect(length >= 2 && length <= count && bytes[length - 1] == 10, "complete at a wrong length \(length): \(what)")
    let head = UnsafeRawBufferPointer(rebasing: bytes[..<length])
    var lines = head.split(separator: 10, omittingEmptySubsequences: false).map { line in
        line.last == 13 ? line.dropLast() : line[...]
    }
    lines.removeLast()  // after the final LF
    for (number, line) in lines.enumerated() {
        for byte in line where byte < 0x20 || byte == 0x7F {
            if number == 0 {
                // Left to the path policy; never what changes how the line splits.
                expect(byte != 0 && byte != 9 && byte != 13, "NUL, HTAB or CR in a complete request line: \(what)")
            } else {
                expect(byte == 9, "control byte \(byte) in line \(number) of a complete head: \(what)")
            }
        }
        if number == 0, let first = line.firstIndex(of: 0x20), let last = line.lastIndex(of: 0x20), first < last {
            // evhttp's target: between the first and the last space. Any control byte in it is
            // refused by the path policy in both modes (SPEC §4.1), so it never reaches an upstream.
            let target = String(decoding: line[(first + 1)..<last], as: UTF8.self)
            if line[(first + 1)..<last].contains(where: { $0 < 0x20 || $0 == 0x7F }) {
                expect(PathNormalizer.normalize(target: target, policy: .strict) == nil
                       && PathNormalizer.normalize(target: target, policy: .lenient) == nil,
                       "a target with a control byte passes the path policy: \(what)")
            }
        }
        if number > 0, let first = line.first { expect(first != 0x20 && first != 9, "obs-fold in a complete head: \(what)") }
    }

    // What evhttp makes of the field lines, and what the head checks accept.
    guard let newline = head.firstIndex(of: 10) else { return 0 }
    guard let request = evhttpRequest(headers: UnsafeRawBufferPointer(rebasing: head[(newline + 1)...])) else { return 0 }
    defer { evhttp_request_free(request) }
    let headers = HeaderList(evhttp_request_get_input_headers(request))
    guard RequestHead.problem(headers, httpMinor: 1, absoluteForm: false) == nil else { return 0 }
    headers.forEach { name, value in
        var index = 0
        while value[index] != 0 {
            let byte = UInt8(bitPattern: value[index])
            expect(byte >= 0x20 && byte != 0x7F || byte == 9,
                   "control byte \(byte) in the value of \(String(cString: name)) after evhttp: \(what)")
            index += 1
        }
    }
    return 0
}
