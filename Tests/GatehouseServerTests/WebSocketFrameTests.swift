import XCTest
import CLibevent
@testable import GatehouseServer

/// The frames of `gatehouse echo` (RFC 6455 §5.2) and its accept key (§4.2.2).
final class WebSocketFrameTests: XCTestCase {
    static func sha1(_ input: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        var size: UInt32 = 0
            _ = input.withUnsafeBufferPointer { EVP_Digest($0.baseAddress, $0.count, &out, &size, EVP_sha1(), nil) }
        return out
    }

    func testAcceptKeyOfTheRFCExample() {
        XCTAssertEqual(WebSocketFrame.accept(key: "dGhlIHNhbXBsZSBub25jZQ==", sha1: Self.sha1), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    func testBase64() {
        XCTAssertEqual(WebSocketFrame.base64(Array("f".utf8)), "Zg==")
        XCTAssertEqual(WebSocketFrame.base64(Array("fo".utf8)), "Zm8=")
        XCTAssertEqual(WebSocketFrame.base64(Array("foo".utf8)), "Zm9v")
        XCTAssertEqual(WebSocketFrame.base64(Array("foobar".utf8)), "Zm9vYmFy")
        XCTAssertEqual(WebSocketFrame.base64([]), "")
    }

    static func parse(_ bytes: [UInt8], max: Int = 1 << 20) -> WebSocketFrame.Parsed {
        bytes.withUnsafeBytes { WebSocketFrame.parse($0, maxPayload: max) }
    }

    /// RFC 6455 §5.7: a masked "Hello".
    func testMaskedHello() {
        let hello: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        XCTAssertEqual(Self.parse(hello), .frame(WebSocketFrame(fin: true, opcode: 1, payload: Array("Hello".utf8)), consumed: 11))
        for cut in 0..<hello.count { XCTAssertEqual(Self.parse(Array(hello[..<cut])), .needMore, "\(cut)") }
        XCTAssertEqual(WebSocketFrame(fin: true, opcode: 1, payload: Array("Hello".utf8)).encoded,
                       [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
    }

    func testHostileFramesAreRefused() {
        let rows: [([UInt8], String)] = [
            ([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], "unmasked client frame"),
            ([0xC1, 0x80, 0, 0, 0, 0], "reserved bit"),
            ([0x83, 0x80, 0, 0, 0, 0], "reserved opcode"),
            ([0x09, 0x80, 0, 0, 0, 0], "fragmented ping"),
            ([0x89, 0xFE, 0x00, 0x7E] + [UInt8](repeating: 0, count: 130), "ping over 125 bytes"),
            ([0x82, 0xFE, 0x00, 0x05, 0, 0, 0, 0, 1, 2, 3, 4, 5], "16-bit length under 126"),
            ([0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0], "64-bit length under 65536"),
            ([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "64-bit length with the top bit"),
            ([0x82, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF], "over the limit"),
        ]
        for (bytes, what) in rows { XCTAssertEqual(Self.parse(bytes), .bad, what) }
    }

    func testLengthForms() {
        for count in [0, 125, 126, 65535, 65536, 70000] {
            let frame = WebSocketFrame(fin: count % 2 == 0, opcode: 2, payload: (0..<count).map { UInt8($0 & 0xFF) })
            var wire = frame.encoded
            // mask it as a client would (key 0: the payload bytes stay)
            wire[1] |= 0x80
            let header = count < 126 ? 2 : count <= 0xFFFF ? 4 : 10
            wire.insert(contentsOf: [0, 0, 0, 0], at: header)
            XCTAssertEqual(Self.parse(wire), .frame(frame, consumed: wire.count), "\(count)")
        }
    }
}

extension WebSocketFrameTests {
    func testWireLengthOnceTheHeadIsThere() {
        func length(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { WebSocketFrame.wireLength($0) } }
        XCTAssertNil(length([0x81]))
        XCTAssertEqual(length([0x81, 0x85]), 11)
        XCTAssertEqual(length([0x81, 0x05]), 7)
        XCTAssertNil(length([0x82, 0xFE, 0x01]))
        XCTAssertEqual(length([0x82, 0xFE, 0x01, 0x00]), 4 + 4 + 256)
        XCTAssertNil(length([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0]))
        XCTAssertEqual(length([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]), 10 + 4 + 65536)
        XCTAssertEqual(length([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0]), Int.max)
    }
}
