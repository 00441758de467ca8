import CCrypt
#if canImport(Glibc)
import Glibc
#endif

/// The one place that calls libxcrypt.
///
/// Every call gets its own zeroed `struct crypt_data` on the heap (about 32 KiB, too large for
/// a comfortable stack frame), which `crypt_rn` uses for all its state: calls are safe on any
/// number of threads at once. The buffer and the NUL-terminated copy of the password are wiped
/// before they are freed.
enum Crypt {
    /// `crypt_rn(phrase, setting)`: the hash of `phrase` with the algorithm, cost and salt that
    /// `setting` names (a complete stored hash is a valid setting). Nil when libxcrypt refuses
    /// the setting, or when the phrase contains a NUL byte (C strings cannot carry it).
    static func hash(_ phrase: [UInt8], setting: String) -> [UInt8]? {
        if phrase.contains(0) { return nil }
        let size = MemoryLayout<crypt_data>.size
        guard let data = calloc(1, size) else { return nil }
        defer {
            explicit_bzero(data, size)
            free(data)
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: phrase.count + 1) { cPhrase in
            defer { explicit_bzero(cPhrase.baseAddress!, cPhrase.count) }
            for (index, byte) in phrase.enumerated() { cPhrase[index] = CChar(bitPattern: byte) }
            cPhrase[phrase.count] = 0
            return setting.withCString { cSetting -> [UInt8]? in
                guard let output = crypt_rn(cPhrase.baseAddress, cSetting, data, Int32(size)) else { return nil }
                let length = strlen(output)
                // libxcrypt's failure tokens start with `*`; crypt_rn returns NULL instead, but
                // a `*` can never begin a valid hash, so refuse it all the same.
                guard length > 0, output[0] != CChar(UInt8(ascii: "*")) else { return nil }
                return UnsafeRawBufferPointer(start: output, count: length).map { $0 }
            }
        }
    }

    /// `crypt_gensalt_rn(prefix, count)` with 16 bytes from the system's random source: a
    /// setting string such as `$2b$10$<22 characters>`. `count` is the bcrypt cost or the
    /// SHA-512 rounds (0: the algorithm's default).
    static func makeSetting(prefix: String, count: Int) -> String? {
        var random = SystemRandomNumberGenerator()
        let randomBytes = (0..<16).map { _ in CChar(bitPattern: UInt8.random(in: .min ... .max, using: &random)) }
        let outputSize = Int(CRYPT_GENSALT_OUTPUT_SIZE)
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: outputSize) { output -> String? in
            let made = prefix.withCString { cPrefix in
                randomBytes.withUnsafeBufferPointer { rbytes in
                    crypt_gensalt_rn(cPrefix, UInt(count), rbytes.baseAddress, Int32(rbytes.count),
                                     output.baseAddress, Int32(outputSize))
                }
            }
            guard let made, made[0] != CChar(UInt8(ascii: "*")) else { return nil }
            return String(cString: made)
        }
    }
}
