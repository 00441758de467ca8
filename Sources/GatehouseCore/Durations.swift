/// Parsing of the config's duration (`500ms`, `30s`, `15m`, `12h`) and size (`16KiB`, `10MiB`)
/// strings. Pure; used by the config loader and tests.
public enum Units {
    /// Milliseconds for a duration string, or nil when it is not one.
    /// Accepted units: `ms`, `s`, `m`, `h`, `d`; a bare number is refused (ambiguous).
    public static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" also ends in "s": make sure "5ms" does not parse as "5m" + "s".
            if suffix == "s", number.hasSuffix("m") { continue }
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = Int64(number), value <= Int64.max / factor else { return nil }
            return value * factor
        }
        return nil
    }

    /// Bytes for a size string, or nil when it is not one. Accepted: a bare byte count,
    /// `B`, `KiB`, `MiB`, `GiB` (binary) and `KB`, `MB`, `GB` (decimal).
    public static func bytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                      ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        var number = Substring(text)
        var factor = 1
        for (suffix, f) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            factor = f
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = Int(number), value <= Int.max / factor else { return nil }
        return value * factor
    }
}

extension String {
    /// `self` without leading and trailing characters that are in `set` (no Foundation).
    public func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
