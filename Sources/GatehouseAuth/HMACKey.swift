import Crypto

/// An HMAC secret with its keyed hash states precomputed (RFC 2104), for HS256, HS384 and HS512.
///
/// HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m)), where K' is the key zero-padded to the hash's
/// block size (a key longer than the block is hashed first). The two hashers that have absorbed
/// the padded key blocks depend on the key alone, so they are computed once here; a verification
/// copies them, feeds the message and the inner digest, and compares in constant time. The result
/// is bit-identical to swift-crypto's `HMAC<H>`, at about a third of the cost per token: `HMAC`
/// re-derives the padded key blocks, with their allocations, on every call.
///
/// A class, so that copying a ``JWK`` retains one reference rather than six hasher states.
final class HMACKey: Sendable {
    let sha256: HMACState<SHA256>
    let sha384: HMACState<SHA384>
    let sha512: HMACState<SHA512>

    init(secret: [UInt8]) {
        (sha256, sha384, sha512) = secret.withUnsafeBytes { key in
            (HMACState(key: key), HMACState(key: key), HMACState(key: key))
        }
    }

    /// True when `mac` is the HMAC of `message` with this key and `hash`: same length, same bytes.
    func isValidAuthenticationCode(_ mac: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer,
                                   hash: JWSAlgorithm.Hash) -> Bool {
        switch hash {
        case .sha256: return sha256.isValidAuthenticationCode(mac, for: message)
        case .sha384: return sha384.isValidAuthenticationCode(mac, for: message)
        case .sha512: return sha512.isValidAuthenticationCode(mac, for: message)
        }
    }
}

/// The inner and outer hashers of HMAC with one hash function, each already updated with the
/// padded key block.
struct HMACState<H: HashFunction>: Sendable {
    /// H after (K' ⊕ ipad).
    private let inner: H
    /// H after (K' ⊕ opad).
    private let outer: H

    init(key: UnsafeRawBufferPointer) {
        let block = H.blockByteCount
        var inner = H()
        var outer = H()
        withUnsafeTemporaryAllocation(byteCount: block, alignment: 1) { padded in
            padded.initializeMemory(as: UInt8.self, repeating: 0)
            if key.count > block {
                var hasher = H()
                hasher.update(bufferPointer: key)
                hasher.finalize().withUnsafeBytes { digest in padded.copyMemory(from: digest) }
            } else if key.count > 0 {
                padded.copyMemory(from: key)
            }
            for index in 0..<block { padded[index] ^= 0x36 }
            inner.update(bufferPointer: UnsafeRawBufferPointer(padded))
            for index in 0..<block { padded[index] ^= 0x36 ^ 0x5C }
            outer.update(bufferPointer: UnsafeRawBufferPointer(padded))
            // Leave no copy of the key on the stack.
            for index in 0..<block { padded[index] = 0 }
        }
        self.inner = inner
        self.outer = outer
    }

    /// The full HMAC of `message`.
    func authenticationCode(for message: UnsafeRawBufferPointer) -> H.Digest {
        var inner = self.inner
        inner.update(bufferPointer: message)
        let innerDigest = inner.finalize()
        var outer = self.outer
        innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }

    /// True when `mac` equals the HMAC of `message`: lengths must match; the bytes are compared
    /// without an early exit.
    func isValidAuthenticationCode(_ mac: UnsafeRawBufferPointer, for message: UnsafeRawBufferPointer) -> Bool {
        authenticationCode(for: message).withUnsafeBytes { constantTimeEquals($0, mac) }
    }
}

/// True when `a` and `b` hold the same bytes. A length mismatch fails at once (lengths are not
/// secret); equal lengths are compared in full, in time that does not depend on where they differ.
@inline(never)
func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<a.count { difference |= a[index] ^ b[index] }
    return difference == 0
}
