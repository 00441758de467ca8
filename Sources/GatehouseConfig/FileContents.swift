#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads for the files a config names (YAML, key files). Failure messages are
/// `strerror`'s, so `check` says what the operating system said.
enum FileContents {
    /// The file's bytes, unchanged.
    static func bytes(_ path: String) -> Result<[UInt8], SyntaxError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(SyntaxError(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(SyntaxError(String(cString: strerror(errno))))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return .success(bytes)
    }

    /// The file's contents as UTF-8 text.
    static func text(_ path: String) -> Result<String, SyntaxError> {
        bytes(path).flatMap { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return .failure(SyntaxError("not UTF-8 text"))
            }
            return .success(text)
        }
    }
}
