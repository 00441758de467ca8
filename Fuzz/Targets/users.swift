/// Fuzz target `users`: the users file (UsersFile, htpasswd format, SPEC §2
/// `sessions.login.users_file`).
///
/// Invariants:
/// - every user kept has a non-empty name of at most 256 bytes, without control characters,
///   `:` or a leading `#`, and a hash that PasswordScheme accepts;
/// - every problem names a line of the file;
/// - writing the users kept back as `name:hash` lines and reading that gives the same users
///   and no problem.
import GatehouseSessions

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUsers(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = FuzzInput.text(data, size)
    let (users, problems) = UsersFile.parse(text, file: "users")
    let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
    for problem in problems {
        expect(problem.line >= 1 && problem.line <= lines, "problem on line \(problem.line) of \(lines): \(problem)")
    }
    for (name, hash) in users {
        let what = "user \(name.debugDescription) hash \(hash.debugDescription) from \(text.debugDescription)"
        expect(!name.isEmpty && name.utf8.count <= LoginRequest.maxUsernameBytes, "name length: \(what)")
        expect(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || $0 == ":" }, "bad name byte: \(what)")
        expect(!name.hasPrefix("#"), "a comment became a user: \(what)")
        if case .failure = PasswordScheme.identify(hash) { violated("hash not accepted: \(what)") }
    }
    let written = users.keys.sorted().map { "\($0):\(users[$0]!)\n" }.joined()
    let again = UsersFile.parse(written, file: "users")
    expect(again.users == users && again.problems.isEmpty,
           "round trip changed the users: \(written.debugDescription) -> \(again.users) \(again.problems)")
    return 0
}
