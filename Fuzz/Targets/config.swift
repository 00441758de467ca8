/// Fuzz target `config`: the config loader (ConfigLoader: YAML through Yams, then validation
/// into diagnostics; SPEC §2, §10, §3.2 Config files), on arbitrary config text.
///
/// The text is written to `config.yaml` in a scratch directory that also holds (as links) the
/// golden tests' key files, users file, TLS files and policy files, so that a config naming
/// them reads real files. deploy/fuzz.sh runs it with a 2 s limit per input and 1 GiB of
/// memory: a YAML bomb (aliases, merge keys) shows up as a timeout or an out-of-memory.
/// Invariants:
/// - a config is produced exactly when there is no error;
/// - every problem in the config file names a line and column inside it (or none), lines
///   counted as YAML counts them (a bare CR ends a line too).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatehouseConfig
import GatehouseCore

private let scratch: String = {
    let fixtures = ProcessInfo.processInfo.environment["FUZZ_CONFIG_FIXTURES"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Tests/GatehouseConfigTests/Golden").standardized.path
    let base = ProcessInfo.processInfo.environment["FUZZ_TMPDIR"] ?? "/tmp"
    var template = Array("\(base)/config.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    let directory = String(cString: made)
    for name in ["keys", "policy_files.d", "tls", "users"] {
        symlink("\(fixtures)/\(name)", "\(directory)/\(name)")
    }
    return directory
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = scratch + "/config.yaml"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    if let data, size > 0 { _ = write(fd, data, size) }
    close(fd)

    let result = ConfigLoader.load(path: path, cpuCount: 2)
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let what = "config \(text.debugDescription) -> \(result.problems.map(\.description))"
    expect((result.config == nil) == !result.errors.isEmpty, "a config with errors, or none without: \(what)")
    // Lines as YAML (libyaml) counts them: CR, LF, CR LF, NEL, LS and PS each end one.
    let lines = 1 + text.unicodeScalars.split(omittingEmptySubsequences: false) {
        ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains($0)
    }.count
    for problem in result.problems where problem.location.file == path {
        expect(problem.location.line >= 0 && problem.location.line <= lines + 1 && problem.location.column >= 0,
               "problem outside the file: \(problem) in \(lines) lines: \(what)")
    }
    return 0
}
