/// The password hash formats a users file may hold: bcrypt and SHA-512 crypt (SPEC §2,
/// `sessions.login.users_file`). Everything else — `$apr1$`, `{SHA}`, DES crypt, `$1$`, `$5$`,
/// `$y$`, plaintext — is refused with a message naming what it is and what is accepted.
public enum PasswordScheme: Sendable, Hashable {
    /// bcrypt (`$2y$`, `$2b$`, `$2a$`), with its cost (log2 of the rounds, 4...31).
    case bcrypt(cost: Int)
    /// SHA-512 crypt (`$6$`), with its rounds (5000 when the hash names none).
    case sha512Crypt(rounds: Int)

    /// What every refusal message ends with.
    public static let acceptedSchemes =
        "accepted are bcrypt ($2y$, $2b$, $2a$) and SHA-512 crypt ($6$); make one with `htpasswd -B` or `gatehouse hash-password`"

    /// The scheme of `hash` when it is a well-formed hash of an accepted scheme, else a message
    /// saying what it looks like. The message never repeats the hash.
    public static func identify(_ hash: String) -> Result<PasswordScheme, PasswordSchemeRefusal> {
        let bytes = Array(hash.utf8)
        if hash.hasPrefix("$2y$") || hash.hasPrefix("$2b$") || hash.hasPrefix("$2a$") {
            guard let cost = bcryptCost(bytes) else {
                return refuse("malformed bcrypt hash (expected $2y$NN$ and 53 characters, cost 04-31)")
            }
            return .success(.bcrypt(cost: cost))
        }
        if hash.hasPrefix("$6$") {
            guard let rounds = sha512Rounds(bytes) else {
                return refuse("malformed SHA-512 crypt hash (expected $6$[rounds=N$]salt$ and 86 characters)")
            }
            return .success(.sha512Crypt(rounds: rounds))
        }
        return .failure(PasswordSchemeRefusal(message: "\(refusedKind(hash)) is refused: \(acceptedSchemes)"))
    }

    private static func refuse(_ message: String) -> Result<PasswordScheme, PasswordSchemeRefusal> {
        .failure(PasswordSchemeRefusal(message: message))
    }

    /// A name for a hash that is not accepted.
    private static func refusedKind(_ hash: String) -> String {
        let prefixes: [(String, String)] = [
            ("$apr1$", "Apache MD5 ($apr1$)"),
            ("{SHA}", "SHA-1 ({SHA})"),
            ("{SSHA}", "salted SHA-1 ({SSHA})"),
            ("$1$", "MD5 crypt ($1$)"),
            ("$5$", "SHA-256 crypt ($5$)"),
            ("$y$", "yescrypt ($y$)"),
            ("$gy$", "GOST yescrypt ($gy$)"),
            ("$7$", "scrypt ($7$)"),
            ("$2x$", "bcrypt $2x$ (the buggy variant)"),
            ("$argon2", "Argon2"),
        ]
        for (prefix, name) in prefixes where hash.hasPrefix(prefix) { return name }
        if hash.hasPrefix("$") { return "an unsupported hash scheme" }
        if hash.utf8.count == 13, hash.utf8.allSatisfy(isCryptBase64) { return "DES crypt" }
        return "a plaintext password (or an unknown format)"
    }

    /// `$2?$NN$` + 53 characters of bcrypt's base64; returns the cost.
    private static func bcryptCost(_ bytes: [UInt8]) -> Int? {
        guard bytes.count == 60, bytes[6] == UInt8(ascii: "$"),
              let tens = digit(bytes[4]), let ones = digit(bytes[5]) else { return nil }
        let cost = tens * 10 + ones
        guard (4...31).contains(cost), bytes[7...].allSatisfy(isCryptBase64) else { return nil }
        return cost
    }

    /// `$6$` [`rounds=N$`] salt (1-16 characters, no `$`) `$` + 86 characters; returns the rounds.
    private static func sha512Rounds(_ bytes: [UInt8]) -> Int? {
        var rest = bytes[3...]
        var rounds = 5000
        let roundsTag = Array("rounds=".utf8)
        if rest.starts(with: roundsTag) {
            rest = rest.dropFirst(roundsTag.count)
            guard let end = rest.firstIndex(of: UInt8(ascii: "$")) else { return nil }
            let digits = rest[..<end]
            guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ digit($0) != nil }) else { return nil }
            rounds = digits.reduce(0) { $0 * 10 + digit($1)! }
            guard (1000...999_999_999).contains(rounds) else { return nil }
            rest = rest[(end + 1)...]
        }
        guard let end = rest.firstIndex(of: UInt8(ascii: "$")) else { return nil }
        let salt = rest[..<end]
        let checksum = rest[(end + 1)...]
        guard (1...16).contains(salt.count), salt.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }),
              checksum.count == 86, checksum.allSatisfy(isCryptBase64) else { return nil }
        return rounds
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// crypt's base64 alphabet: `./0-9A-Za-z`.
    static func isCryptBase64(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"):
            return true
        default:
            return false
        }
    }
}

/// Why a users-file hash is not accepted, in words for `gatehouse check`.
public struct PasswordSchemeRefusal: Error, Sendable, Equatable {
    /// What the hash looks like and which schemes are accepted.
    public let message: String
}
