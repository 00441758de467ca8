import CByteScan
/// Writes an access-log line's bytes into memory reserved in advance (``AccessLogRecord/appendJSON``):
/// every piece is a `memcpy` or a byte store, with no capacity check per piece. The caller
/// reserves at least ``AccessLogRecord/jsonBound(prefixCount:)`` bytes.
struct JSONLineWriter {
    private let base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0

    init(_ base: UnsafeMutablePointer<UInt8>) { self.base = base }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        base[count] = b
        count += 1
    }

    @inline(__always)
    mutating func literal(_ text: StaticString) {
        let n = text.utf8CodeUnitCount
        (base + count).update(from: text.utf8Start, count: n)
        count += n
    }

    @inline(__always)
    mutating func bytes(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let start = bytes.baseAddress, !bytes.isEmpty else { return }
        (base + count).update(from: start, count: bytes.count)
        count += bytes.count
    }

    /// A JSON string, escaped as ``JSONText/appendString`` does: `"`, `\`, `\n`, `\r`, `\t`
    /// by name, other control bytes (and DEL) as `\u00XX`; every other byte as it is (the
    /// UTF-8 of the other scalars).
    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            byte(0x22)
            // The bytes before the first one to escape, found 8 or 16 at a time (the byte loop
            // it replaces cost ~6 instructions a byte, ~950 a log line).
            let plain = utf8.baseAddress.map { gh_json_plain_prefix($0, utf8.count) } ?? 0
            bytes(UnsafeBufferPointer(rebasing: utf8[..<plain]))
            for b in utf8[plain...] { escaped(b) }
            byte(0x22)
        }
    }

    private mutating func escaped(_ b: UInt8) {
        switch b {
        case 0x22: literal("\\\"")
        case 0x5C: literal("\\\\")
        case 0x0A: literal("\\n")
        case 0x0D: literal("\\r")
        case 0x09: literal("\\t")
        case 0..<0x20, 0x7F:
            literal("\\u00")
            let hex: StaticString = "0123456789abcdef"
            byte(hex.utf8Start[Int(b >> 4)])
            byte(hex.utf8Start[Int(b & 15)])
        default: byte(b)
        }
    }

    /// Text known to need no escaping (an enum's raw value).
    mutating func raw(_ value: String) {
        var value = value
        value.withUTF8 { bytes($0) }
    }

    mutating func optional(_ value: String?) {
        if let value { string(value) } else { literal("null") }
    }

    mutating func int(_ value: Int) {
        if value < 0 {
            byte(0x2D)
            if value == .min { return literal("9223372036854775808") }
            return int(-value)
        }
        var digits = 1, rest = value / 10
        while rest > 0 { digits += 1; rest /= 10 }
        var v = value
        for i in stride(from: count + digits - 1, through: count, by: -1) {
            base[i] = UInt8(48 + v % 10)
            v /= 10
        }
        count += digits
    }

    /// `value` in `width` digits, zero-padded (its last `width` digits).
    mutating func digits(_ value: Int, width: Int) {
        var v = value
        for i in stride(from: count + width - 1, through: count, by: -1) {
            base[i] = UInt8(48 + v % 10)
            v /= 10
        }
        count += width
    }

    /// Milliseconds with three decimals, as ``JSONText/milliseconds``.
    mutating func ms(_ value: Double) {
        let micros = Int64((value * 1000).rounded())
        if micros < 0 {
            var text = JSONText.milliseconds(value)
            return text.withUTF8 { bytes($0) }
        }
        int(Int(micros / 1000))
        byte(0x2E)
        digits(Int(micros % 1000), width: 3)
    }
}

extension TraceContext {
    /// The trace id's 32 hex digits (as ``appendTraceID(to:)``).
    func writeTraceID(_ w: inout JSONLineWriter) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            Self.hex(traceHigh, digits: 16, at: buffer.baseAddress!)
            Self.hex(traceLow, digits: 16, at: buffer.baseAddress! + 16)
            w.bytes(UnsafeBufferPointer(buffer))
        }
    }
}
