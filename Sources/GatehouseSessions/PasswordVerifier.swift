/// Checks passwords against the users file's hashes with libxcrypt's `crypt_rn`.
///
/// A value holds one snapshot of the users file (made again on reload) and a ``dummyHash``
/// that stands in for unknown users, so that "no such user" costs one hash computation of the
/// same scheme and cost as "wrong password" (SPEC §5.3: roughly the same time).
///
/// Every check computes a hash: bcrypt at cost 10 takes ~50 ms (see FIELD-NOTES), so never
/// call ``check(user:password:)`` or ``verify(password:hash:)`` on an event loop — submit it to
/// a ``PasswordCheckPool``. All methods are thread-safe.
public struct PasswordVerifier: Sendable {
    /// Hashes by user name, as ``UsersFile/parse(_:file:)`` returned them.
    public let users: [String: String]
    /// A hash of a random password that nobody knows, in the users' most common scheme and
    /// cost (bcrypt cost 10 when there are no users).
    public let dummyHash: String

    /// The default bcrypt cost, for ``hash(password:cost:)`` and an empty users file.
    public static let defaultCost = 10

    /// Takes a users snapshot and computes its dummy hash: one hash computation (~50 ms at
    /// bcrypt cost 10), so make it where a reload is prepared, not on an event loop.
    public init(users: [String: String]) {
        self.init(users: users, dummyHash: Self.makeDummyHash(matching: users.values))
    }

    /// Takes a users snapshot and a dummy hash made earlier (by ``makeDummyHash(matching:)``).
    public init(users: [String: String], dummyHash: String) {
        self.users = users
        self.dummyHash = dummyHash
    }

    /// True when `user` exists and `password` matches its hash. An unknown user costs one
    /// check against ``dummyHash`` and is refused.
    public func check(user: String, password: [UInt8]) -> Bool {
        guard let hash = users[user] else {
            _ = Self.verify(password: password, hash: dummyHash)
            return false
        }
        return Self.verify(password: password, hash: hash)
    }

    /// True when `password` hashes to `hash` (bcrypt or SHA-512 crypt). The computed hash is
    /// compared with the stored one in constant time. False for a hash libxcrypt refuses and for
    /// a password with a NUL byte. bcrypt reads at most 72 password bytes: longer passwords
    /// match on their first 72.
    public static func verify(password: [UInt8], hash: String) -> Bool {
        guard let computed = Crypt.hash(password, setting: hash) else { return false }
        return constantTimeEqual(computed, Array(hash.utf8))
    }

    /// ``verify(password:hash:)`` for the UTF-8 bytes of `password`.
    public static func verify(password: String, hash: String) -> Bool {
        verify(password: Array(password.utf8), hash: hash)
    }

    /// A new `$2b$` bcrypt hash of `password` with a random salt from `crypt_gensalt_rn`, for
    /// `gatehouse hash-password`. Nil when `cost` is outside 4...31 or the password contains a
    /// NUL byte.
    public static func hash(password: [UInt8], cost: Int = defaultCost) -> String? {
        guard (4...31).contains(cost), let setting = Crypt.makeSetting(prefix: "$2b$", count: cost),
              let hashed = Crypt.hash(password, setting: setting) else { return nil }
        return String(decoding: hashed, as: UTF8.self)
    }

    /// ``hash(password:cost:)`` for the UTF-8 bytes of `password`.
    public static func hash(password: String, cost: Int = defaultCost) -> String? {
        hash(password: Array(password.utf8), cost: cost)
    }

    /// A hash of 32 random bytes (never kept) in the scheme and cost that most of `hashes`
    /// use — ties go to the costlier one — so that checking it takes as long as checking a
    /// typical user's. bcrypt cost 10 when no hash is usable.
    public static func makeDummyHash(matching hashes: some Sequence<String>) -> String {
        var tally: [PasswordScheme: Int] = [:]
        for hash in hashes {
            if case .success(let scheme) = PasswordScheme.identify(hash) { tally[scheme, default: 0] += 1 }
        }
        let typical = tally.max { lhs, rhs in
            lhs.value != rhs.value ? lhs.value < rhs.value : workFactor(lhs.key) < workFactor(rhs.key)
        }?.key ?? .bcrypt(cost: defaultCost)
        var random = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 1 ... .max, using: &random) }
        let setting: String?
        switch typical {
        case .bcrypt(let cost): setting = Crypt.makeSetting(prefix: "$2b$", count: cost)
        case .sha512Crypt(let rounds): setting = Crypt.makeSetting(prefix: "$6$", count: rounds)
        }
        if let setting, let hashed = Crypt.hash(secret, setting: setting) {
            return String(decoding: hashed, as: UTF8.self)
        }
        return fallbackDummyHash
    }

    /// Microseconds per check as measured here (2-core EPYC, libxcrypt 4.4): bcrypt cost c
    /// ~40 ms × 2^(c-10), SHA-512 crypt ~0.18 µs a round. Only used to break ties.
    private static func workFactor(_ scheme: PasswordScheme) -> Double {
        switch scheme {
        case .bcrypt(let cost): return 40_000 * pow2(cost - 10)
        case .sha512Crypt(let rounds): return 0.18 * Double(rounds)
        }
    }

    private static func pow2(_ exponent: Int) -> Double {
        exponent >= 0 ? Double(1 << min(exponent, 62)) : 1 / Double(1 << min(-exponent, 62))
    }

    /// Used only if libxcrypt cannot make a salt: bcrypt cost 10 of a random string that was
    /// thrown away (made with `htpasswd -nbB -C 10`).
    static let fallbackDummyHash = "$2b$10$D9EQvYwyIkRvXlI2pPT8V.3s9jnp3ndEa2mPGw2kCYriMgWENB7EO"

    /// Compares all of both arrays whatever they hold; only the lengths (public: they follow
    /// from the scheme) end it early.
    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
