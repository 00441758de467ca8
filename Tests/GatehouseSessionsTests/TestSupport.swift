import Foundation
import Synchronization
@testable import GatehouseSessions

/// A clock the tests move by hand (Unix seconds).
final class ManualClock: Sendable {
    private let seconds: Atomic<Int64>

    init(_ start: Int64 = 1_800_000_000) { seconds = Atomic(start) }

    var now: Int64 { seconds.load(ordering: .relaxed) }
    func advance(_ delta: Int64) { seconds.add(delta, ordering: .relaxed) }
    func set(_ value: Int64) { seconds.store(value, ordering: .relaxed) }
    var function: @Sendable () -> Int64 { { self.now } }
}

/// The committed files in Fixtures/, written by Fixtures/make-fixtures.sh with htpasswd and
/// mkpasswd (never run by the tests).
enum PasswordFixtures {
    struct Entry {
        let user: String
        let password: String
        let tool: String
    }

    static var directory: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures") }

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    /// users.htpasswd, parsed.
    static func users() throws -> [String: String] {
        let parsed = UsersFile.parse(try text("users.htpasswd"), file: "users.htpasswd")
        precondition(parsed.problems.isEmpty, "\(parsed.problems)")
        return parsed.users
    }

    /// passwords.tsv: user, password, tool.
    static func passwords() throws -> [Entry] {
        try text("passwords.tsv").split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Entry(user: fields[0], password: fields[1], tool: fields[2])
        }
    }
}

/// A seeded generator (SplitMix64) for reproducible ids.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
