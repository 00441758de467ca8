import XCTest
@testable import GatehousePolicy

/// The 16-bytes-at-a-time scan against the byte-at-a-time definition: every byte value at every
/// position of buffers of every length up to 40 (two vector steps and every tail), at every
/// alignment, and field values with HTAB.
final class PlainBytesTests: XCTestCase {
    private func reference(_ bytes: [UInt8]) -> Int {
        bytes.firstIndex { $0 < 0x20 || $0 == 0x7F } ?? bytes.count
    }

    private func prefix(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { PlainBytes.prefixLength($0.baseAddress!, $0.count) }
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

    func testEveryAlignmentAgreesWithTheDefinition() {
        let clean = [UInt8](repeating: UInt8(ascii: "x"), count: 64)
        for shift in 0..<16 {
            for position in [0, 7, 15, 16, 31, 47] {
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
