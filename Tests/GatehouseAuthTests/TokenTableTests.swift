import XCTest
@testable import GatehouseAuth

/// The fixed-size table behind ``VerifiedTokenCache``: lookups by hash then whole token, sets of
/// four slots, replacement of the oldest entry of a full set, and the keyed token hash.
final class TokenTableTests: XCTestCase {
    /// A table whose tokens all hash to `hash` lands them in one set: slot collisions on demand.
    func testLookupsAndReplacementInOneSet() {
        enum Step { case insert(String), remove(String) }
        let table: [(name: String, capacity: Int, steps: [Step], present: [String], absent: [String], count: Int)] = [
            ("an inserted token is found", 4096, [.insert("a")], ["a"], ["b"], 1),
            ("a miss on an empty table", 4096, [], [], ["a"], 0),
            ("same hash, other token: a miss, not the other's entry", 4096, [.insert("a")], ["a"], ["a2", "", "A"], 1),
            ("four tokens fill a set", 4096, [.insert("a"), .insert("b"), .insert("c"), .insert("d")],
             ["a", "b", "c", "d"], [], 4),
            ("a fifth replaces the oldest of the set", 4096,
             [.insert("a"), .insert("b"), .insert("c"), .insert("d"), .insert("e")], ["b", "c", "d", "e"], ["a"], 4),
            ("then the next oldest", 4096,
             [.insert("a"), .insert("b"), .insert("c"), .insert("d"), .insert("e"), .insert("f")],
             ["c", "d", "e", "f"], ["a", "b"], 4),
            ("a removed token frees its slot, which the next insert takes", 4096,
             [.insert("a"), .insert("b"), .insert("c"), .insert("d"), .remove("b"), .insert("e")],
             ["a", "c", "d", "e"], ["b"], 4),
            ("one slot: every insert replaces", 1, [.insert("a"), .insert("b")], ["b"], ["a"], 1),
            ("two slots: a set of two", 3, [.insert("a"), .insert("b"), .insert("c")], ["b", "c"], ["a"], 2),
        ]
        for row in table {
            let tokens = TokenTable<String>(capacity: row.capacity)
            for step in row.steps {
                switch step {
                case .insert(let token): tokens.insert(Substring(token), hash: 42, entry: "entry " + token)
                case .remove(let token):
                    guard let slot = tokens.slot(of: Substring(token), hash: 42) else { return XCTFail(row.name) }
                    tokens.remove(at: slot)
                }
            }
            for token in row.present {
                guard let slot = tokens.slot(of: Substring(token), hash: 42) else { XCTFail("\(row.name): \(token) missing"); continue }
                XCTAssertEqual(tokens.entry(at: slot), "entry " + token, row.name)
            }
            for token in row.absent {
                XCTAssertNil(tokens.slot(of: Substring(token), hash: 42), "\(row.name): \(token) present")
            }
            XCTAssertEqual(tokens.count, row.count, row.name)
        }
    }

    /// Tokens that differ only before the hashed tail have one hash: each still finds only its
    /// own entry, and many of them only evict each other from their set.
    func testTokensAlikeInTheTailAreToldApartByTheirWholeBytes() {
        let hasher = TokenHasher()
        let tail = String(repeating: "s", count: TokenHasher.tailBytes)
        let tokens = TokenTable<Int>(capacity: 64)
        let other = Substring("other-token")
        tokens.insert(other, hash: hasher.hash(other), entry: -1)
        for index in 0..<100 {
            let token = Substring("\(1000 + index)." + tail)
            XCTAssertNil(tokens.slot(of: token, hash: hasher.hash(token)), "\(index) before its insert")
            tokens.insert(token, hash: hasher.hash(token), entry: index)
            XCTAssertEqual(tokens.slot(of: token, hash: hasher.hash(token)).map(tokens.entry(at:)), index)
        }
        XCTAssertLessThanOrEqual(tokens.count, 5, "one set of four, and the other token")
    }

    func testCapacityIsAPowerOfTwoNotAboveTheOneAskedFor() {
        let table: [(asked: Int, slots: Int)] = [(0, 1), (1, 1), (3, 2), (4, 4), (1000, 512), (4096, 4096)]
        for row in table {
            XCTAssertEqual(TokenTable<Int>(capacity: row.asked).slotCount, row.slots, "capacity \(row.asked)")
        }
    }

    func testTokensSpreadOverTheSetsAndRemoveAllEmptiesTheTable() {
        let tokens = TokenTable<Int>(capacity: 64)
        let hasher = TokenHasher()
        for index in 0..<1000 {
            let token = Substring("token-\(index)")
            tokens.insert(token, hash: hasher.hash(token), entry: index)
        }
        // Distinct tokens fill every slot of a 64-slot table long before 1000 inserts.
        XCTAssertEqual(tokens.count, 64)
        let last = Substring("token-999")
        XCTAssertEqual(tokens.slot(of: last, hash: hasher.hash(last)).map(tokens.entry(at:)), 999)
        tokens.removeAll()
        XCTAssertEqual(tokens.count, 0)
        XCTAssertNil(tokens.slot(of: last, hash: hasher.hash(last)))
    }

    func testTheHashDependsOnEveryByteOfTheTailTheLengthAndTheKeys() {
        var generator = SplitMix64(seed: 7)
        let hasher = TokenHasher(using: &generator)
        var same = SplitMix64(seed: 7)
        var other = SplitMix64(seed: 8)
        let base = String(repeating: "eyJhbGciOiJIUzI1NiJ9.", count: 12)  // 252 bytes: 15 blocks and a tail
        let table: [(name: String, a: String, b: String)] = [
            ("last byte of the tail", base, String(base.dropLast()) + "/"),
            ("first byte of the tail", base, String(base.prefix(188)) + "#" + base.dropFirst(189)),
            ("a byte inside a 16-byte block of the tail", base, String(base.prefix(200)) + "#" + base.dropFirst(201)),
            ("first byte of a token shorter than the tail", String(base.prefix(40)), "f" + base.prefix(40).dropFirst()),
            ("the length, the tail the same", base, "x" + base),
            ("a trailing zero byte", "abc", "abc\u{0}"),
            ("exactly one block against one block and a byte", String(base.prefix(16)), String(base.prefix(17))),
            ("empty against one byte", "", "a"),
        ]
        for row in table {
            XCTAssertNotEqual(hasher.hash(Substring(row.a)), hasher.hash(Substring(row.b)), row.name)
            XCTAssertNotEqual(hasher.hash(Substring(row.a)), 0, row.name)
        }
        XCTAssertEqual(hasher.hash(Substring(base)), TokenHasher(using: &same).hash(Substring(base)), "same keys, same hash")
        XCTAssertNotEqual(hasher.hash(Substring(base)), TokenHasher(using: &other).hash(Substring(base)), "other keys")
        // Bytes before the tail are not hashed: such tokens share a set, not an entry (below).
        XCTAssertEqual(hasher.hash(Substring(base)), hasher.hash(Substring("f" + base.dropFirst())))
        // A substring hashes as the string it spells.
        let padded = "  " + base + "  "
        XCTAssertEqual(hasher.hash(padded.dropFirst(2).dropLast(2)), hasher.hash(Substring(base)))
    }
}

/// A deterministic generator for keyed hashes in tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
