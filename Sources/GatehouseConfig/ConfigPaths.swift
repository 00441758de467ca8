#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-path arithmetic for the rule of SPEC §2: a relative path is relative to the directory
/// of the file that names it. Pure string work except ``currentDirectory()``.
enum ConfigPaths {
    /// The directory part of a path as written: `conf/gatehouse.yaml` -> `conf`,
    /// `gatehouse.yaml` -> `` (the current directory), `/gatehouse.yaml` -> `/`.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// `path` when absolute, else `path` under `directory` (still relative when `directory` is).
    static func join(_ directory: String, _ path: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty { return path }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }

    /// `path` resolved against `directory` and then `cwd`, with `.`, `..` and repeated
    /// slashes resolved (`..` never climbs above `/`).
    static func absolute(_ path: String, relativeTo directory: String, cwd: String) -> String {
        normalize(join(cwd, join(directory, path)))
    }

    /// Removes `.` segments, resolves `..`, merges slashes; for absolute paths.
    static func normalize(_ path: String) -> String {
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        return "/" + segments.joined(separator: "/")
    }

    /// `path` as seen from `directory` when it lies below it (the FILE that `check` shows for a
    /// policy file), else `path` unchanged.
    static func relative(_ path: String, to directory: String) -> String {
        guard !directory.isEmpty else { return path }
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// The process's working directory, `/` if it cannot be read.
    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
