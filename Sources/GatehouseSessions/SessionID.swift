import Crypto

/// A session id: 32 random bytes (256 bits, SPEC §5.3), carried in the cookie as 43 base64url
/// characters without padding (RFC 4648 §5).
///
/// The id itself is only ever in the client's cookie and in the `Set-Cookie` that issues it;
/// stores keep ``hash(_:)`` of it (hex SHA-256), so a leaked store does not yield usable
/// cookies. Never log either.
public struct SessionID: Sendable, Hashable {
    /// The cookie value: 43 base64url characters.
    public let value: String

    /// Length of ``value``.
    public static let encodedLength = 43

    /// A fresh id from the system's cryptographic random source (`getrandom` on Linux).
    public static func generate() -> SessionID {
        var random = SystemRandomNumberGenerator()
        return generate(using: &random)
    }

    /// A fresh id from `generator` (tests inject a seeded one; production uses ``generate()``).
    public static func generate(using generator: inout some RandomNumberGenerator) -> SessionID {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for _ in 0..<4 {
            let word = generator.next() as UInt64
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return SessionID(checkedValue: base64URL(bytes))
    }

    /// The id a cookie carries, when it has the shape of one (exactly 43 base64url characters):
    /// a cheap check before any hashing or store lookup. Says nothing about whether the store
    /// knows it.
    public init?(cookieValue: String) {
        guard Self.isWellFormed(cookieValue) else { return nil }
        value = cookieValue
    }

    private init(checkedValue: String) { value = checkedValue }

    /// Exactly 43 characters of `A-Z a-z 0-9 - _`.
    public static func isWellFormed(_ cookieValue: String) -> Bool {
        let utf8 = cookieValue.utf8
        return utf8.count == encodedLength && utf8.allSatisfy(isBase64URL)
    }

    /// What stores keep: ``hash(_:)`` of ``value``.
    public var idHash: String { Self.hash(value) }

    /// Lowercase hex SHA-256 of the cookie value's UTF-8 bytes (64 characters).
    public static func hash(_ cookieValue: String) -> String {
        let digest = SHA256.hash(data: Array(cookieValue.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// Base64url without padding (RFC 4648 §5).
    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var group: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { group |= UInt32(byte) << UInt32(16 - 8 * offset) }
            for position in 0...chunk.count {
                out.append(alphabet[Int((group >> UInt32(18 - 6 * position)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
