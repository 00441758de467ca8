/// Request ids (SPEC §3 step 2): an incoming `X-Request-Id` is kept when it matches
/// `[A-Za-z0-9._-]{1,128}`, otherwise the gateway makes a new one.
public enum RequestID {
    /// True when `value` may be kept as the request id.
    public static func isAcceptable(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        for b in bytes {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
    }
}

/// Makes unique request ids without a system call per request: a random per-generator prefix
/// (from the system's random source, once) and a counter. One generator per event loop;
/// not thread-safe by design.
public struct RequestIDGenerator {
    /// The prefix's 16 lowercase hex digits.
    private let prefix: [UInt8]
    /// The random prefix as a number: the seed of new traces (``trace()``).
    private let seed: UInt64
    private var counter: UInt64 = 0

    /// `counter`: the count before the first id (tests start it high to see the id widen).
    public init<R: RandomNumberGenerator>(using rng: inout R, counter: UInt64 = 0) {
        self.counter = counter
        let high = rng.next() as UInt64
        seed = high
        prefix = Array(String(high, radix: 16).leftPadded(to: 16).utf8)
    }

    public init() {
        var rng = SystemRandomNumberGenerator()
        self.init(using: &rng)
    }

    /// The next id: 16 hex digits of prefix, `-`, the counter in hex (at least 8 digits).
    /// Written straight into the string's storage: one allocation.
    public mutating func next() -> String {
        counter &+= 1
        var digits = 8
        while digits < 16 && counter >> (4 * UInt64(digits)) != 0 { digits += 1 }
        let count = 17 + digits, value = counter
        return prefix.withUnsafeBufferPointer { prefix in
            String(unsafeUninitializedCapacity: count) { out in
                for i in 0..<16 { out[i] = prefix[i] }
                out[16] = UInt8(ascii: "-")
                var rest = value
                for i in stride(from: count - 1, through: 17, by: -1) {
                    let nibble = UInt8(truncatingIfNeeded: rest & 15)
                    out[i] = nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a")
                    rest >>= 4
                }
                return count
            }
        }
    }

    /// A new W3C trace (SPEC §15.3) from the same randomness: the random prefix and the next
    /// count. No system call, no allocation.
    public mutating func trace() -> TraceContext {
        counter &+= 1
        return TraceContext.made(seed: seed, counter: counter)
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
