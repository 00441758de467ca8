import CByteScan

/// Runs of "plain" bytes in a request head: neither a control byte (0x00–0x1F) nor DEL (0x7F).
/// Bytes of 0x80 and above are plain here (obs-text in a field value). Checked 16 bytes at a
/// time (SSE2, in C: Sources/CByteScan), so that the per-request checks of SPEC §3.2 cost about
/// half an instruction per byte of a clean head instead of a state-machine step per byte.
public enum PlainBytes {
    /// How many bytes from `base` are plain, at most `count`.
    @inline(__always)
    public static func prefixLength(_ base: UnsafeRawPointer, _ count: Int) -> Int {
        gh_plain_prefix(base.assumingMemoryBound(to: UInt8.self), count)
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
