import Glibc

/// A fixed-size table of entries keyed by token, for ``VerifiedTokenCache``: no rehashing, no
/// growth, and a new entry replaces an old one instead of the table being cleared when full.
///
/// Set-associative: a token's ``TokenHasher`` hash picks a set of (up to) four adjacent slots; a
/// lookup compares the stored hashes of that set, then the whole token of a matching one, so a
/// hash collision can only cost a miss, never return another token's entry. An insert takes a
/// free slot of the set, else the one inserted longest ago. Whatever an attacker sends, a lookup
/// and an insert touch four slots at most; aiming tokens at one set only evicts entries, which a
/// stream of distinct tokens does anyway.
///
/// Not thread-safe: owned by one event loop (see ``VerifiedTokenCache``).
final class TokenTable<Entry> {
    /// Per slot: the token's hash, 0 when the slot is free (``TokenHasher`` never returns 0).
    private let hashes: UnsafeMutablePointer<UInt64>
    /// Per slot: when its entry was inserted, from ``clock``; the oldest of a full set is replaced.
    private let stamps: UnsafeMutablePointer<UInt64>
    /// Per slot: the token, and its entry (nil when free). Apart, so that a lookup compares the
    /// token's bytes in place instead of copying a slot out first.
    private let tokens: UnsafeMutablePointer<Substring>
    private let entries: UnsafeMutablePointer<Entry?>
    /// Slot count minus one, with the low bits of a set's position cleared (see ``ways``).
    private let setMask: Int
    private let ways: Int
    private var clock: UInt64 = 0

    /// Number of slots: `capacity` rounded down to a power of two (at least 1).
    let slotCount: Int
    /// Number of occupied slots.
    private(set) var count = 0

    init(capacity: Int) {
        var slotCount = 1
        while slotCount * 2 <= capacity { slotCount *= 2 }
        self.slotCount = slotCount
        ways = min(slotCount, 4)
        setMask = (slotCount - 1) & ~(ways - 1)
        hashes = .allocate(capacity: slotCount)
        hashes.initialize(repeating: 0, count: slotCount)
        stamps = .allocate(capacity: slotCount)
        stamps.initialize(repeating: 0, count: slotCount)
        tokens = .allocate(capacity: slotCount)
        tokens.initialize(repeating: "", count: slotCount)
        entries = .allocate(capacity: slotCount)
        entries.initialize(repeating: nil, count: slotCount)
    }

    deinit {
        tokens.deinitialize(count: slotCount)
        tokens.deallocate()
        entries.deinitialize(count: slotCount)
        entries.deallocate()
        stamps.deallocate()
        hashes.deallocate()
    }

    /// The slot holding `token`, whose hash is `hash`.
    func slot(of token: Substring, hash: UInt64) -> Int? {
        var token = token
        return token.withUTF8 { slot(of: $0, hash: hash) }
    }

    /// The slot holding the token of bytes `token`, whose hash is `hash`. A stored token is
    /// read in place (no copy of its substring, so no reference-count pair).
    func slot(of token: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int? {
        let first = Int(truncatingIfNeeded: hash) & setMask
        for slot in first..<(first + ways) where hashes[slot] == hash {
            if tokens[slot].withUTF8({ TokenTable.sameBytes($0, token) }) { return slot }
        }
        return nil
    }

    /// The entry in an occupied `slot`.
    func entry(at slot: Int) -> Entry { entries[slot]! }

    /// Byte equality (a token is ASCII: no Unicode comparison is needed), one `memcmp`.
    private static func sameBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
        x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
    }

    /// Frees `slot`.
    func remove(at slot: Int) {
        guard hashes[slot] != 0 else { return }
        hashes[slot] = 0
        tokens[slot] = ""
        entries[slot] = nil
        count -= 1
    }

    /// Stores `entry` for `token`, which must not be in the table: in a free slot of its set,
    /// else in place of the entry of that set inserted longest ago.
    func insert(_ token: Substring, hash: UInt64, entry: Entry) {
        let first = Int(truncatingIfNeeded: hash) & setMask
        var chosen = first
        for slot in first..<(first + ways) {
            if hashes[slot] == 0 { chosen = slot; break }
            if stamps[slot] < stamps[chosen] { chosen = slot }
        }
        if hashes[chosen] == 0 { count += 1 }
        clock += 1
        hashes[chosen] = hash
        stamps[chosen] = clock
        tokens[chosen] = token
        entries[chosen] = entry
    }

    /// Frees every slot.
    func removeAll() {
        hashes.update(repeating: 0, count: slotCount)
        for slot in 0..<slotCount {
            tokens[slot] = ""
            entries[slot] = nil
        }
        count = 0
    }
}

/// A keyed 64-bit hash of a token's bytes for ``TokenTable``. The keys are random per instance
/// (per worker's cache), so which tokens share a set cannot be worked out from outside.
///
/// Sixteen bytes per step through a 64×64→128-bit multiply folded to 64 bits (the mixing step of
/// wyhash), over a token's last 64 bytes: a quarter of what `Hasher` (SipHash-1-3) took for
/// the same bytes. Its quality only matters for how evenly
/// tokens spread over the sets: a hit always compares the whole token.
struct TokenHasher {
    private let key0: UInt64
    private let key1: UInt64
    private let key2: UInt64

    init<Generator: RandomNumberGenerator>(using generator: inout Generator) {
        key0 = generator.next()
        key1 = generator.next() | 1
        key2 = generator.next() | 1
    }

    init() {
        var system = SystemRandomNumberGenerator()
        self.init(using: &system)
    }

    /// Bytes hashed: the last ones of a token (see ``hash(_:)``).
    static let tailBytes = 64

    /// The hash of `token`'s length and of its last ``tailBytes`` bytes; never 0.
    ///
    /// The tail, not the whole token: a JWS ends with its signature, which differs between
    /// any two tokens that differ at all (a 700-byte RS256 token hashed whole cost ~620
    /// instructions of every cache hit; its last 64 bytes cost ~60). Tokens an attacker makes
    /// to share a tail and a length share a set, so they only evict each other; a lookup
    /// still compares whole tokens.
    func hash(_ token: Substring) -> UInt64 {
        var token = token
        return token.withUTF8 { hash($0) }
    }

    /// ``hash(_:)-(Substring)`` of a token's bytes.
    func hash(_ all: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let skipped = max(0, all.count - TokenHasher.tailBytes)
        let tail = UnsafeRawBufferPointer(start: all.baseAddress.map { $0 + skipped }, count: all.count - skipped)
        let value = hash(bytes: tail, length: all.count)
        return value == 0 ? 1 : value
    }

    private func hash(bytes: UnsafeRawBufferPointer, length: Int) -> UInt64 {
        let count = bytes.count
        var state = key0 ^ UInt64(truncatingIfNeeded: length)
        var index = 0
        while index + 16 <= count {
            let a = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            state = Self.mix(a ^ key1, b ^ state)
            index += 16
        }
        // The last 0–15 bytes, zero-padded (the length went into the state first).
        var a: UInt64 = 0, b: UInt64 = 0
        for offset in 0..<(count - index) {
            let byte = UInt64(bytes[index + offset])
            if offset < 8 { a |= byte << (offset * 8) } else { b |= byte << ((offset - 8) * 8) }
        }
        state = Self.mix(a ^ key1, b ^ state)
        return Self.mix(state ^ key2, key1)
    }

    @inline(__always)
    private static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }
}
