import GatehouseCore
import XCTest

final class RequestIDGeneratorTests: XCTestCase {
    private struct Fixed: RandomNumberGenerator {
        var value: UInt64
        mutating func next() -> UInt64 { value }
    }

    /// The ids are the prefix, `-`, and the counter in hex padded to 8 digits — as the text
    /// formatting defines them — also past 8 digits.
    func testIdsAreThePrefixAndTheCounterInHex() {
        var rng = Fixed(value: 0x00ab_cdef_0123_4567)
        var generator = RequestIDGenerator(using: &rng)
        XCTAssertEqual(generator.next(), "00abcdef01234567-00000001")
        XCTAssertEqual(generator.next(), "00abcdef01234567-00000002")
        for _ in 0..<13 { _ = generator.next() }
        XCTAssertEqual(generator.next(), "00abcdef01234567-00000010")
        var all = Set<String>()
        for _ in 0..<10_000 {
            let id = generator.next()
            XCTAssertTrue(RequestID.isAcceptable(id))
            all.insert(id)
        }
        XCTAssertEqual(all.count, 10_000)
    }

    func testTheCounterWidensPastEightDigits() {
        func reference(_ prefix: UInt64, _ n: UInt64) -> String {
            let p = String(prefix, radix: 16), c = String(n, radix: 16)
            return String(repeating: "0", count: 16 - p.count) + p + "-" + String(repeating: "0", count: max(0, 8 - c.count)) + c
        }
        for n: UInt64 in [1, 0xffff_ffff, 0x1_0000_0000, 0xf_ffff_ffff, 0xffff_ffff_ffff_fffe] {
            var rng = Fixed(value: 0xfedc_ba98_7654_3210)
            var generator = RequestIDGenerator(using: &rng, counter: n - 1)
            XCTAssertEqual(generator.next(), reference(0xfedc_ba98_7654_3210, n))
        }
    }
}
