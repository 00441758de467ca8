/// Shared by every fuzz target (compiled into each executable by deploy/fuzz.sh).
///
/// An invariant that does not hold stops the run through `fatalError`: libFuzzer reports it as
/// a deadly signal and saves the input as `crash-…`, and the message says which invariant.

/// Stops the run: `message` names the invariant that failed and the values that broke it.
func violated(_ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz invariant violated: \(message())", file: file, line: line)
}

/// `violated(message)` unless `condition` holds.
@inline(__always)
func expect(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { violated(message(), file: file, line: line) }
}

/// Reads a fuzz input as a few small choices followed by the rest as payload, in the manner of
/// LLVM's FuzzedDataProvider: choices are taken from the front, so the payload keeps the bytes
/// the seed corpus gives it.
struct FuzzInput {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0

    init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeBufferPointer(start: data, count: size)
    }

    /// The next byte, or 0 when none is left.
    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// Everything not taken yet.
    mutating func rest() -> UnsafeBufferPointer<UInt8> {
        defer { position = bytes.count }
        return UnsafeBufferPointer(rebasing: bytes[min(position, bytes.count)...])
    }

    /// Everything, as a (repaired) UTF-8 string, the way a request's bytes become a `String`.
    static func text(_ data: UnsafePointer<UInt8>?, _ size: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    }
}

extension Collection<UInt8> {
    /// Hex, for messages about inputs that are not printable.
    var hex: String {
        map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
        }.joined()
    }
}
