import XCTest
@testable import GatehouseCore

/// W3C `traceparent` (SPEC §15.3): a strict version-00 parser and the traces the gateway makes.
final class TraceContextTests: XCTestCase {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    func testAValidHeaderIsKeptExactly() throws {
        let trace = try XCTUnwrap(TraceContext.parse(Self.valid))
        XCTAssertEqual(trace.traceID, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertEqual(trace.parent, 0x00f0_67aa_0ba9_02b7)
        XCTAssertEqual(trace.flags, 1)
        XCTAssertEqual(trace.header, Self.valid)
        XCTAssertEqual(TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.flags, 0)
        XCTAssertEqual(TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff")?.flags, 0xFF)
        XCTAssertEqual(Self.valid.withCString { TraceContext.parse(cString: $0) }, trace)
    }

    func testHostileFormsAreRefused() {
        let refused = [
            "",                                                              // empty
            "00",                                                            // short
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       // trace id all zero
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       // parent id all zero
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // another version
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // the invalid version
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",       // uppercase hex
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",       // uppercase flags
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",       // not hex
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",       // wrong separators
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // leading space
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",      // trailing space
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // version 00 is exactly 55 bytes
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01,00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // two joined
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",       // shifted dash
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // sign
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\u{0}1",   // NUL
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é",        // non-ASCII, 55 bytes? no: longer
        ]
        for value in refused {
            XCTAssertNil(TraceContext.parse(value), value.debugDescription)
            XCTAssertNil(value.withCString { TraceContext.parse(cString: $0) }, value.debugDescription)
        }
        // A NUL inside stops the C string early: refused as too short.
        XCTAssertNil("00-4bf92f3577b34da6\u{0}3ce929d0e0e4736-00f067aa0ba902b7-01".withCString { TraceContext.parse(cString: $0) })
    }

    func testMadeTracesAreValidUniqueAndNeverZero() {
        var seen = Set<String>()
        for counter in [0, 1, 2, 3, UInt64.max, UInt64.max - 1] as [UInt64] {
            for seed in [0, 1, 0xDEAD_BEEF, UInt64.max] as [UInt64] {
                let trace = TraceContext.made(seed: seed, counter: counter)
                XCTAssertEqual(TraceContext.parse(trace.header), trace, trace.header)
                XCTAssertTrue(seen.insert(trace.traceID).inserted, trace.header)
            }
        }
        var generator = RequestIDGenerator()
        let a = generator.trace(), b = generator.trace()
        XCTAssertNotEqual(a.traceID, b.traceID)
        XCTAssertEqual(a.traceHigh, b.traceHigh, "one generator's traces share its random prefix")
        XCTAssertEqual(a.flags, 1)
    }

    func testHexDigitsAreWrittenForEveryNibbleAtEveryPlace() {
        for nibble in 0..<16 as Range<UInt64> {
            for place in 0..<16 as Range<UInt64> {
                let value = nibble << (4 * place) | (place == 0 ? 0 : 0xA)
                let trace = TraceContext(traceHigh: value, traceLow: ~value, parent: value | 1, flags: UInt8(nibble * 17))
                let expected = "00-" + hex(value) + hex(~value) + "-" + hex(value | 1) + "-"
                    + String(format2: UInt8(nibble * 17))
                XCTAssertEqual(trace.header, expected)
            }
        }
        func hex(_ v: UInt64) -> String {
            let digits = String(v, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
    }

    func testTheLogLineCarriesTheTraceID() {
        var record = AccessLogRecord()
        XCTAssertTrue(record.json(timestamp: "2026-01-01T00:00:00.000Z").contains(#""trace_id":null"#))
        record.trace = TraceContext.parse(Self.valid)!
        let line = record.json(timestamp: "2026-01-01T00:00:00.000Z")
        XCTAssertTrue(line.contains(#""request_id":"","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","#), line)
        XCTAssertFalse(line.contains("shadow"))
        record.shadow = true
        XCTAssertTrue(record.json(timestamp: "2026-01-01T00:00:00.000Z").contains(#","shadow":true,"#))
    }
}

private extension String {
    init(format2 byte: UInt8) {
        let digits = String(byte, radix: 16)
        self = digits.count == 1 ? "0" + digits : digits
    }
}
