/// A W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/ §3.2), version 00:
/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase (SPEC §15.3).
///
/// Held as three integers and a byte — no heap allocation per request: an incoming header is
/// parsed from evhttp's bytes, a new one is made from integers, and both are written as hex
/// straight into the upstream request head and the access-log line.
public struct TraceContext: Sendable, Equatable {
    public var traceHigh: UInt64
    public var traceLow: UInt64
    public var parent: UInt64
    public var flags: UInt8

    /// The length of a version-00 header value.
    public static let length = 55

    public init(traceHigh: UInt64, traceLow: UInt64, parent: UInt64, flags: UInt8) {
        self.traceHigh = traceHigh
        self.traceLow = traceLow
        self.parent = parent
        self.flags = flags
    }

    /// No trace (all zero): never valid on the wire, written as `null` in a log line.
    public static let none = TraceContext(traceHigh: 0, traceLow: 0, parent: 0, flags: 0)

    public var isNone: Bool { traceHigh == 0 && traceLow == 0 }

    /// The header value, strictly: exactly 55 bytes, version `00`, lowercase hex only (the
    /// specification's `HEXDIGLC`), `-` separators, a trace id and a parent id that are not all
    /// zero. Anything else — another version, uppercase hex, spaces, a longer value (two
    /// headers joined) — is nil, and the gateway makes a new trace.
    public static func parse(_ value: UnsafeRawBufferPointer) -> TraceContext? {
        guard value.count == length, value[0] == 0x30, value[1] == 0x30, value[2] == 0x2D, value[35] == 0x2D,
              value[52] == 0x2D,
              let high = hex(value, from: 3, count: 16), let low = hex(value, from: 19, count: 16),
              let parent = hex(value, from: 36, count: 16), let flags = hex(value, from: 53, count: 2),
              high | low != 0, parent != 0 else { return nil }
        return TraceContext(traceHigh: high, traceLow: low, parent: parent, flags: UInt8(flags))
    }

    /// ``parse(_:)`` of a NUL-terminated value (evhttp's).
    public static func parse(cString: UnsafePointer<CChar>) -> TraceContext? {
        var count = 0
        while count <= length, cString[count] != 0 { count += 1 }  // at most 56 bytes looked at
        guard count == length else { return nil }
        return parse(UnsafeRawBufferPointer(start: cString, count: count))
    }

    public static func parse(_ text: String) -> TraceContext? {
        var text = text
        return text.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// `count` lowercase hex digits at `from`, or nil.
    @inline(__always)
    private static func hex(_ bytes: UnsafeRawBufferPointer, from: Int, count: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in from..<(from + count) {
            let c = bytes[index]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c &- 0x30
            case 0x61...0x66: digit = c &- 0x61 &+ 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// A new trace for the `counter`-th request of a generator seeded with `seed` (the request
    /// id generator's random prefix): trace id = seed ‖ mix(counter), parent id = mix(¬counter
    /// ⊕ seed). `mix` (SplitMix64's finalizer) is a bijection, so ids are unique per generator
    /// and the seed tells generators apart; sampled (`01`), as nothing downstream samples yet.
    public static func made(seed: UInt64, counter: UInt64) -> TraceContext {
        var parent = mix(~counter ^ seed)
        if parent == 0 { parent = 1 }
        var low = mix(counter)
        if seed == 0 && low == 0 { low = 1 }  // an all-zero trace id is invalid
        return TraceContext(traceHigh: seed, traceLow: low, parent: parent, flags: 0x01)
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Writes the 55-byte header value at `out`. Digits are written into place, and callers
    /// append the whole line at once: appending 55 bytes one by one to an `Array` cost ~1,100
    /// instructions per request (callgrind-jwt.sh), this ~150.
    @inline(__always)
    public func write(headerValueAt out: UnsafeMutablePointer<UInt8>) {
        out[0] = 0x30; out[1] = 0x30; out[2] = 0x2D
        Self.hex(traceHigh, digits: 16, at: out + 3)
        Self.hex(traceLow, digits: 16, at: out + 19)
        out[35] = 0x2D
        Self.hex(parent, digits: 16, at: out + 36)
        out[52] = 0x2D
        Self.hex(UInt64(flags), digits: 2, at: out + 53)
    }

    /// Appends the 55-byte header value.
    public func appendHeaderValue(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.length) { buffer in
            write(headerValueAt: buffer.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(buffer))
        }
    }

    /// Appends the 32 hex digits of the trace id, at once.
    public func appendTraceID(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            Self.hex(traceHigh, digits: 16, at: buffer.baseAddress!)
            Self.hex(traceLow, digits: 16, at: buffer.baseAddress! + 16)
            out.append(contentsOf: UnsafeBufferPointer(buffer))
        }
    }

    /// The header value as a String (tests, `gatehouse test`).
    public var header: String {
        var out: [UInt8] = []
        out.reserveCapacity(Self.length)
        appendHeaderValue(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The trace id as 32 hex digits.
    public var traceID: String {
        var out: [UInt8] = []
        appendTraceID(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `digits` (16 or 2) lowercase hex digits of the low bits of `value`, most significant
    /// first. Sixteen digits are made eight at a time in a 64-bit word (nibbles spread one per
    /// byte, then `0`–`9`/`a`–`f` added without a branch): ~25 instructions instead of ~100.
    @inline(__always)
    static func hex(_ value: UInt64, digits: Int, at out: UnsafeMutablePointer<UInt8>) {
        if digits == 16 {
            let raw = UnsafeMutableRawPointer(out)
            raw.storeBytes(of: hexWord(UInt32(truncatingIfNeeded: value >> 32)).littleEndian, as: UInt64.self)
            (raw + 8).storeBytes(of: hexWord(UInt32(truncatingIfNeeded: value)).littleEndian, as: UInt64.self)
            return
        }
        var v = value
        var index = digits - 1
        while index >= 0 {
            let nibble = UInt8(truncatingIfNeeded: v & 0xF)
            out[index] = nibble < 10 ? 0x30 &+ nibble : 0x57 &+ nibble
            v >>= 4
            index -= 1
        }
    }

    /// The 8 hex digits of `value` as ASCII bytes, the most significant digit in the lowest byte.
    @inline(__always)
    static func hexWord(_ value: UInt32) -> UInt64 {
        var x = UInt64(value)
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
        x = (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0F   // byte i = nibble i, counted from the least significant
        x = x.byteSwapped                            // byte i = nibble i, counted from the most significant
        let letters = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101  // 1 where the nibble > 9
        return x &+ 0x3030_3030_3030_3030 &+ letters &* 39  // 39 = "a" - "0" - 10
    }
}
