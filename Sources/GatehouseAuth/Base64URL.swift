/// Strict base64url decoding (RFC 4648 §5) as JWS compact serialization uses it (RFC 7515 §2):
/// no padding, no whitespace, nothing outside `A–Z a–z 0–9 - _`, and the unused bits of the last
/// character must be zero, so every byte string has exactly one accepted encoding.
public enum Base64URL {
    /// 0–63 for alphabet bytes, 0xFF for everything else.
    private static let table: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    /// The decoded bytes, or nil when `text` is not canonical unpadded base64url.
    public static func decode(_ text: String) -> [UInt8]? {
        var text = text
        return text.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
    }

    /// The decoded bytes of `input`, or nil when it is not canonical unpadded base64url.
    public static func decode(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard let outputCount = decodedCount(input.count) else { return nil }
        var failed = false
        let output = [UInt8](unsafeUninitializedCapacity: outputCount) { out, initialized in
            // Bytes are plain integers: leaving some unwritten on failure is harmless, and the
            // array is dropped anyway.
            failed = !decode(input, into: UnsafeMutableRawBufferPointer(out))
            initialized = failed ? 0 : outputCount
        }
        return failed ? nil : output
    }

    /// How many bytes `count` base64url characters decode to; nil for a length no unpadded
    /// encoding has (`count % 4 == 1`).
    static func decodedCount(_ count: Int) -> Int? {
        if count % 4 == 1 { return nil }
        return count / 4 * 3 + (count % 4 == 0 ? 0 : count % 4 - 1)
    }

    /// Decodes `input` into `out`, which must hold exactly ``decodedCount(_:)`` bytes; false when
    /// `input` is not canonical unpadded base64url (then `out` holds partial garbage).
    static func decode(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        let count = input.count
        guard let outputCount = decodedCount(count), out.count == outputCount else { return false }
        return table.withUnsafeBufferPointer { table -> Bool in
            var i = 0, o = 0
            while i + 4 <= count {
                let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                if (a | b | c | d) & 0xC0 != 0 { return false }
                out[o] = a << 2 | b >> 4
                out[o + 1] = b << 4 | c >> 2
                out[o + 2] = c << 6 | d
                i += 4; o += 3
            }
            switch count - i {
            case 2:
                let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                if (a | b) & 0xC0 != 0 || b & 0x0F != 0 { return false }
                out[o] = a << 2 | b >> 4
            case 3:
                let a = table[Int(input[i])], b = table[Int(input[i + 1])], c = table[Int(input[i + 2])]
                if (a | b | c) & 0xC0 != 0 || c & 0x03 != 0 { return false }
                out[o] = a << 2 | b >> 4
                out[o + 1] = b << 4 | c >> 2
            default:
                break
            }
            return true
        }
    }
}
