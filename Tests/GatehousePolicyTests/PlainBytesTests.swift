import XCTest
@testable import GatehousePolicy

/// The 32- and 16-bytes-at-a-time scans against the byte-at-a-time definition: every byte value
/// at every position of buffers of every length up to 40 (two 16-byte steps and every tail) and
/// around one to three 32-byte steps, at every alignment, and field values with HTAB.
final class PlainBytesTests: XCTestCase {
    private func reference(_ bytes: [UInt8]) -> Int {
        bytes.firstIndex { $0 < 0x20 || $0 == 0x7F } ?? bytes.count
    }

    private func prefix(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { PlainBytes.prefixLength($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.count) }
    }

    func testEveryByteAtEveryPositionAgreesWithTheDefinition() {
        for length in 1...40 {
            for position in 0..<length {
                for byte in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(byte)
                    XCTAssertEqual(prefix(bytes), reference(bytes), "byte \(byte) at \(position) of \(length)")
                }
            }
        }
    }

    /// The 32-byte steps (AVX2, where this CPU has it) and their tails: every byte value at
    /// every position of buffers around one, two and three steps, against both the definition
    /// and the 16-byte scan alone.
    func testLongRunsAgreeWithTheDefinitionAndTheSSE2Scan() {
        for length in [31, 32, 33, 47, 48, 63, 64, 65, 95, 96, 97, 700] {
            for position in 0..<length where length < 100 || position % 29 == 0 || position >= length - 40 {
                for byte in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "b"), count: length)
                    bytes[position] = UInt8(byte)
                    let expected = reference(bytes)
                    XCTAssertEqual(prefix(bytes), expected, "byte \(byte) at \(position) of \(length)")
                    let sse2 = bytes.withUnsafeBytes { PlainBytes.prefixLengthSSE2($0.baseAddress!, $0.count) }
                    XCTAssertEqual(sse2, expected, "SSE2: byte \(byte) at \(position) of \(length)")
                }
            }
        }
        // Two bad bytes in one step: the first counts.
        var bytes = [UInt8](repeating: UInt8(ascii: "c"), count: 96)
        bytes[40] = 0x7F
        bytes[33] = 0x0A
        XCTAssertEqual(prefix(bytes), 33)
        XCTAssertEqual(prefix(Array(bytes[0..<33])), 33)
    }

    /// Several bytes near the limits in one buffer (a borrow in the 8-byte word test can mark
    /// bytes after the first bad one, never before it): random buffers, fixed seed.
    func testRandomBuffersOfBytesNearTheLimitsAgreeWithTheDefinition() {
        let near: [UInt8] = [0x00, 0x01, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x41, 0x61]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for round in 0..<20_000 {
            let length = next() % 80
            // Mostly plain bytes, so that the first bad one lands anywhere.
            let bytes = (0..<length).map { _ in next() % 8 == 0 ? near[next() % near.count] : UInt8(0x41 + next() % 26) }
            XCTAssertEqual(prefix(bytes), reference(bytes), "round \(round): \(bytes)")
            let sse2 = bytes.withUnsafeBytes { PlainBytes.prefixLengthSSE2($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.count) }
            XCTAssertEqual(sse2, reference(bytes), "SSE2, round \(round): \(bytes)")
        }
    }

    func testTheAVX2PathIsTakenWhereTheCPUHasIt() throws {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard cpuinfo.contains(" avx2") else { throw XCTSkip("this CPU has no AVX2") }
        XCTAssertTrue(PlainBytes.usesAVX2)
    }

    func testEveryAlignmentAgreesWithTheDefinition() {
        let clean = [UInt8](repeating: UInt8(ascii: "x"), count: 128)
        for shift in 0..<32 {
            for position in [0, 7, 15, 16, 31, 32, 47, 63, 64, 95] {
                var bytes = clean
                bytes[shift + position] = 0x0D
                bytes.withUnsafeBytes { all in
                    let count = all.count - shift
                    XCTAssertEqual(PlainBytes.prefixLength(all.baseAddress! + shift, count), position, "CR at \(position), shift \(shift)")
                    XCTAssertEqual(PlainBytes.prefixLength(all.baseAddress! + shift, position), position)
                }
            }
        }
    }

    func testHighBytesAndNeighboursOfTheLimitsArePlain() {
        let bytes: [UInt8] = [0x20, 0x7E, 0x80, 0xFF, 0x21, 0x7D, 0x81, 0xFE, 0x20, 0x7E, 0x80, 0xFF]
        XCTAssertEqual(prefix(bytes), bytes.count)
        XCTAssertEqual(prefix(bytes + [0x1F]), bytes.count)
        XCTAssertEqual(prefix(bytes + [0x7F] + bytes), bytes.count)
    }

    /// The token table against RFC 9110 §5.6.2 as written: `tchar = "!" / "#" / "$" / "%" /
    /// "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`.
    func testTheTokenTableIsTheRFCsTokenSet() {
        let listed = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for c in 0...255 {
            XCTAssertEqual([UInt8(c)].withUnsafeBufferPointer { PlainBytes.isToken($0) }, listed.contains(UInt8(c)), "byte \(c)")
        }
        let name: [UInt8] = Array("X-Auth-Subject".utf8)
        XCTAssertTrue(name.withUnsafeBufferPointer { PlainBytes.isToken($0) })
        for bad in [[], Array("X A".utf8), Array("X:".utf8), [0x58, 0x0D], [0x58, 0xE9], [0x7F]] as [[UInt8]] {
            XCTAssertFalse(bad.withUnsafeBufferPointer { PlainBytes.isToken($0) }, "\(bad)")
        }
    }

    /// The C table of tchar (gh_token_prefix, gh_token_span) against the RFC's list: every byte
    /// value at every position of names of 1–20 bytes, and the NUL as the end of a span.
    func testTheCTokenScansAgreeWithTheRFCsTokenSet() {
        let listed = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for length in 1...20 {
            for position in 0..<length {
                for byte in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "k"), count: length)
                    bytes[position] = UInt8(byte)
                    let expected = listed.contains(UInt8(byte)) ? length : position
                    let prefix = bytes.withUnsafeBufferPointer { PlainBytes.isToken($0) }
                    XCTAssertEqual(prefix, expected == length, "byte \(byte) at \(position) of \(length)")
                    let span = (bytes + [0]).withUnsafeBufferPointer {
                        PlainBytes.tokenSpan(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self))
                    }
                    XCTAssertEqual(span, byte == 0 ? position : expected, "span: byte \(byte) at \(position) of \(length)")
                }
            }
        }
        XCTAssertEqual(PlainBytes.tokenSpan(""), 0)
        XCTAssertFalse(PlainBytes.isToken(UnsafeBufferPointer(start: nil, count: 0)))
    }

    func testFieldValuesAllowHTABOnly() {
        func check(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer { PlainBytes.isFieldValue($0) } }
        XCTAssertTrue(check([]))
        XCTAssertTrue(check(Array("a\tb c\t\t".utf8) + Array(repeating: 0x41, count: 30) + [0x09]))
        for byte in UInt8(0)...UInt8(0x1F) where byte != 0x09 {
            XCTAssertFalse(check(Array(repeating: 0x41, count: 17) + [byte] + [0x41]), "byte \(byte)")
        }
        XCTAssertFalse(check(Array(repeating: 0x41, count: 9) + [0x7F]))
    }
}
