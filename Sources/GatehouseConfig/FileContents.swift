#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads for the files a config names (YAML, key files). Failure messages are
/// `strerror`'s, so `check` says what the operating system said.
enum FileContents {
    /// The file's bytes, unchanged. With `limit`, only a regular file of at most `limit` bytes
    /// is read (SPEC §3.2 Config files): it is opened without blocking (a FIFO would otherwise
    /// hold the reading thread until a writer came) and measured before it is read, and never
    /// more than `limit` bytes are read, should it grow meanwhile.
    static func bytes(_ path: String, limit: Int? = nil) -> Result<[UInt8], SyntaxError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | (limit == nil ? 0 : O_NONBLOCK))
        guard fd >= 0 else { return .failure(SyntaxError(String(cString: strerror(errno)))) }
        defer { close(fd) }
        if let limit {
            var status = stat()
            guard fstat(fd, &status) == 0 else { return .failure(SyntaxError(String(cString: strerror(errno)))) }
            guard status.st_mode & S_IFMT == S_IFREG else { return .failure(SyntaxError("not a regular file")) }
            guard status.st_size <= limit else { return .failure(tooLarge(Int(status.st_size), limit: limit)) }
        }
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
            if let limit, bytes.count > limit { return .failure(tooLarge(bytes.count, limit: limit)) }
        }
        return .success(bytes)
    }

    private static func tooLarge(_ size: Int, limit: Int) -> SyntaxError {
        SyntaxError("the file is \(size) bytes, more than the \(limit >> 20) MiB a config file may have")
    }

    /// The file's contents as UTF-8 text.
    static func text(_ path: String, limit: Int? = nil) -> Result<String, SyntaxError> {
        bytes(path, limit: limit).flatMap { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else {
                return .failure(SyntaxError("not UTF-8 text"))
            }
            return .success(text)
        }
    }
}
