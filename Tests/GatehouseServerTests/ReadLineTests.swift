import CEvhttpHook
import CLibevent
import Foundation
import XCTest

/// The interposed `evbuffer_readln` (Sources/CEvhttpHook/readline.c) must give what libevent's
/// own gives for `EVBUFFER_EOL_CRLF` — the line, its length, and what is left in the buffer —
/// however the bytes are split over the buffer's chains.
final class ReadLineTests: XCTestCase {
    /// A buffer holding `pieces`, each in a chain of its own (added by reference, so that
    /// libevent does not merge them).
    private func buffer(_ pieces: [[UInt8]], keep storage: inout [UnsafeMutableRawPointer]) -> OpaquePointer {
        let buffer = evbuffer_new()!
        for piece in pieces where !piece.isEmpty {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: piece.count, alignment: 1)
            piece.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: piece.count) }
            storage.append(copy)
            XCTAssertEqual(evbuffer_add_reference(buffer, copy, piece.count, nil, nil), 0)
        }
        return buffer
    }

    private func contents(_ buffer: OpaquePointer) -> [UInt8] {
        let count = evbuffer_get_length(buffer)
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBytes { evbuffer_copyout(buffer, $0.baseAddress, count) }
        return bytes
    }

    /// Reads lines until none is left (at most 64), the same way from two copies of `pieces`.
    private func compare(_ pieces: [[UInt8]], frozen: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        var storage: [UnsafeMutableRawPointer] = []
        defer { storage.forEach { $0.deallocate() } }
        let ours = buffer(pieces, keep: &storage), theirs = buffer(pieces, keep: &storage)
        defer { evbuffer_free(ours); evbuffer_free(theirs) }
        if frozen { evbuffer_freeze(ours, 1); evbuffer_freeze(theirs, 1) }
        for _ in 0..<64 {
            var ourLength = 99, theirLength = 99
            let a = gh_readln_crlf(ours, &ourLength), b = gh_original_readln_crlf(theirs, &theirLength)
            defer { free(a); free(b) }
            XCTAssertEqual(a == nil, b == nil, "pieces \(pieces)", file: file, line: line)
            XCTAssertEqual(ourLength, theirLength, "pieces \(pieces)", file: file, line: line)
            if let a, let b {
                XCTAssertEqual(Array(UnsafeRawBufferPointer(start: a, count: ourLength + 1)),
                               Array(UnsafeRawBufferPointer(start: b, count: theirLength + 1)), "pieces \(pieces)",
                               file: file, line: line)
            }
            XCTAssertEqual(contents(ours), contents(theirs), "pieces \(pieces)", file: file, line: line)
            if a == nil || b == nil { break }
        }
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Lines ending in LF or CR LF, empty lines, a CR not before an LF (part of the line), a CR
    /// LF split between two chains, an LF first in its chain after a CR ending the one before,
    /// no LF at all, an empty buffer, NUL bytes, a 700-byte line.
    func testLinesAsLibeventReadsThem() {
        compare([bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")])
        compare([bytes("a\nb\n\nc")])
        compare([bytes("a\rb\r\r\n\r\r\n\r")])
        compare([bytes("a\r"), bytes("\nb\r\n")])
        compare([bytes("a"), bytes("\r"), bytes("\n")])
        compare([bytes("a\r"), bytes("b\n")])
        compare([bytes("\n"), bytes("\r\n")])
        compare([bytes("no end")])
        compare([bytes("no end\r")])
        compare([])
        compare([[0x41, 0x00, 0x42, 0x0D, 0x0A, 0x00, 0x0A]])
        compare([bytes("Authorization: Bearer " + String(repeating: "e", count: 700) + "\r\n\r\n")])
        compare([bytes("Authorization: Bearer "), bytes(String(repeating: "e", count: 700)), bytes("\r"), bytes("\n\r\n")])
    }

    /// An LF beyond the eighth chain goes to libevent's own function; so does nothing differ.
    func testManyChains() {
        compare((0..<20).map { _ in bytes("ab") } + [bytes("\r\n")])
        compare((0..<20).map { _ in bytes("a\r") } + [bytes("\n")])
        compare((0..<7).map { _ in bytes("ab") } + [bytes("\r"), bytes("\n")])
    }

    /// A buffer whose start is frozen gives no line and loses nothing.
    func testAFrozenStartGivesNothing() {
        compare([bytes("a\r\nb\n")], frozen: true)
    }

    /// 3,000 random splits of random bytes near the line ends.
    func testRandomSplits() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x0D, 0x0A, 0x41, 0x20, 0x00, 0x0D]
        for _ in 0..<3_000 {
            let count = Int.random(in: 0...40, using: &generator)
            let all = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            var pieces: [[UInt8]] = []
            var index = 0
            while index < all.count {
                let take = Int.random(in: 1...max(1, all.count - index), using: &generator)
                pieces.append(Array(all[index..<min(all.count, index + take)]))
                index += take
            }
            compare(pieces)
        }
    }
}
