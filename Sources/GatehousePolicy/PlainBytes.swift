import CByteScan

/// Runs of "plain" bytes in a request head: neither a control byte (0x00–0x1F) nor DEL (0x7F).
/// Bytes of 0x80 and above are plain here (obs-text in a field value). Checked 32 bytes at a
/// time (AVX2) or 16 (SSE2), in C (Sources/CByteScan), so that the per-request checks of SPEC
/// §3.2 cost under an instruction per byte of a clean head instead of a state-machine step
/// per byte.
public enum PlainBytes {
    /// How many bytes from `base` are plain, at most `count`.
    @inline(__always)
    public static func prefixLength(_ base: UnsafeRawPointer, _ count: Int) -> Int {
        gh_plain_prefix(base.assumingMemoryBound(to: UInt8.self), count)
    }

    /// ``prefixLength(_:_:)`` by the 16-byte (SSE2) scan whatever the CPU: for the tests that
    /// compare it with the 32-byte (AVX2) one.
    static func prefixLengthSSE2(_ base: UnsafeRawPointer, _ count: Int) -> Int {
        gh_plain_prefix_sse2(base.assumingMemoryBound(to: UInt8.self), count)
    }

    /// True when ``prefixLength(_:_:)`` takes 32 bytes a step (AVX2) on this CPU.
    static var usesAVX2: Bool { gh_plain_prefix_uses_avx2() != 0 }

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

    /// How many bytes from `base` are RFC 9110 §5.6.2 `tchar`, at most `count`. The one
    /// definition of a header name's bytes (request heads, upstream heads and responses,
    /// identity headers) is the table behind it (CByteScan's `gh_token_prefix`).
    @inlinable @inline(__always)
    public static func tokenPrefixLength(_ base: UnsafePointer<UInt8>, _ count: Int) -> Int {
        gh_token_prefix(base, count)
    }

    /// A non-empty name of token characters (RFC 9110 §5.1): a header name that may be written.
    @inlinable
    public static func isToken(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return false }
        return gh_token_prefix(base, bytes.count) == bytes.count
    }

    /// How many bytes of the NUL-terminated `name` are token characters: all of them when
    /// `name[result]` is its NUL.
    @inlinable @inline(__always)
    public static func tokenSpan(_ name: UnsafePointer<CChar>) -> Int { gh_token_span(name) }
}
