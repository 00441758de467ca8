/// Runs of "plain" bytes in a request head: neither a control byte (0x00–0x1F) nor DEL (0x7F).
/// Bytes of 0x80 and above are plain here (obs-text in a field value). Checked 8 bytes at a
/// time (SWAR, "Bit Twiddling Hacks": a word has a byte below n / a zero byte), so that the
/// per-request checks of SPEC §3.2 cost about one instruction per byte of a clean head instead
/// of a state-machine step per byte.
public enum PlainBytes {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// How many bytes from `base` are plain, at most `count`.
    @inline(__always)
    public static func prefixLength(_ base: UnsafeRawPointer, _ count: Int) -> Int {
        var index = 0
        while index &+ 8 <= count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            // Nonzero exactly when some byte is below 0x20 (valid for n ≤ 128).
            let control = (word &- ones &* 0x20) & ~word & highs
            // Nonzero exactly when some byte is 0x7F (a zero byte after the XOR).
            let flipped = word ^ (ones &* 0x7F)
            let del = (flipped &- ones) & ~flipped & highs
            if control | del != 0 { break }
            index &+= 8
        }
        while index < count {
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            if byte < 0x20 || byte == 0x7F { break }
            index &+= 1
        }
        return index
    }

    /// True when `bytes` holds no control byte but HTAB, and no DEL (a field value that may be
    /// written: SPEC §3.2).
    public static func isFieldValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        while true {
            index &+= prefixLength(UnsafeRawPointer(base + index), count &- index)
            if index == count { return true }
            if base[index] != 0x09 { return false }
            index &+= 1
        }
    }
}
