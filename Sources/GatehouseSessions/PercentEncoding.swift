/// Percent-encoding (RFC 3986 §2.1) as the record codec and the login form need it.
public enum PercentEncoding {
    /// Every byte outside the unreserved set (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
    static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `%XX` escapes stand for (and `+` for a space when `plusAsSpace`, as in
    /// `application/x-www-form-urlencoded`); nil for a `%` not followed by two hex digits.
    /// Stops with nil once the output would exceed `limit` bytes.
    public static func decode(_ text: some Collection<UInt8>, plusAsSpace: Bool, limit: Int = .max) -> [UInt8]? {
        var out: [UInt8] = []
        var index = text.startIndex
        while index != text.endIndex {
            let byte = text[index]
            text.formIndex(after: &index)
            if out.count >= limit { return nil }
            if byte == UInt8(ascii: "%") {
                guard index != text.endIndex, let high = hexValue(text[index]) else { return nil }
                text.formIndex(after: &index)
                guard index != text.endIndex, let low = hexValue(text[index]) else { return nil }
                text.formIndex(after: &index)
                out.append(high << 4 | low)
            } else if byte == UInt8(ascii: "+"), plusAsSpace {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(byte)
            }
        }
        return out
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
