import XCTest
@testable import GatehouseServer

/// A connection's remembered `Authorization` value is reused only for the very same bytes.
final class AuthorizationMemoTests: XCTestCase {
    /// What `ConnectionHeaders.authorization()` gives for `bytes` when the connection remembers `known`.
    private func value(_ bytes: [UInt8], known: String?) -> String {
        if let known, holds(known, bytes) { return known }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func holds(_ known: String, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { AuthorizationMemo.holds(known, $0.baseAddress ?? UnsafePointer(bitPattern: 1)!, bytes.count) }
    }

    /// Equal bytes hold; a change of any one byte at any position, a byte more or less, do not:
    /// values shorter than, as long as and longer than the constant-time tail.
    func testOnlyTheSameBytesAreTheSameValue() {
        for length in [0, 1, 7, 8, 63, 64, 65, 129, 700] {
            let bytes = (0..<length).map { UInt8(0x41 + $0 % 26) }
            let known = String(decoding: bytes, as: UTF8.self)
            XCTAssertTrue(holds(known, bytes), "length \(length)")
            XCTAssertFalse(holds(known, bytes + [0x41]), "length \(length) + 1")
            if length > 0 { XCTAssertFalse(holds(known, Array(bytes.dropLast())), "length \(length) - 1") }
            for position in 0..<length {
                for flip: UInt8 in [0x01, 0x20, 0x80] {
                    var changed = bytes
                    changed[position] ^= flip
                    XCTAssertFalse(holds(known, changed), "length \(length), byte \(position) ^ \(flip)")
                }
            }
        }
    }

    /// The remembered value stands for the same bytes only: a value made of invalid UTF-8 is
    /// repaired (as `String(cString:)` does), and its repaired bytes are not the raw ones.
    func testTheValueIsTheStringOfItsBytes() {
        let token = "Bearer " + String(repeating: "eyJhbGciOiJSUzI1NiJ9.", count: 30)
        let made = value(Array(token.utf8), known: nil)
        XCTAssertEqual(made, token)
        XCTAssertEqual(value(Array(token.utf8), known: made), token)
        XCTAssertEqual(value(Array("Bearer other".utf8), known: made), "Bearer other")
        let invalid: [UInt8] = Array("Bearer ".utf8) + [0xFF, 0xC3, 0x41]
        let repaired = String(decoding: invalid, as: UTF8.self)
        XCTAssertEqual(value(invalid, known: nil), repaired)
        XCTAssertEqual(value(invalid, known: repaired), repaired)
        // The repaired String's bytes are not the raw bytes: a value holding them is not "the same".
        XCTAssertFalse(holds(repaired, invalid))
        XCTAssertEqual(value(Array(repaired.utf8), known: repaired), repaired)
        XCTAssertEqual(value([], known: made), "")
        XCTAssertEqual(value([], known: ""), "")
    }
}
