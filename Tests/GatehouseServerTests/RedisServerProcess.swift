import Foundation
import Glibc

/// A throwaway `redis-server` for tests: its own free loopback port, no persistence, stopped by
/// ``stop()`` (tests call it from `tearDown`). ``start()`` can run it again on the same port.
final class RedisServerProcess {
    enum Failure: Error, CustomStringConvertible {
        case notInstalled, didNotStart(String)
        var description: String {
            switch self {
            case .notInstalled: return "redis-server is not installed (apt-get install -y redis-server)"
            case .didNotStart(let why): return "redis-server did not start: \(why)"
            }
        }
    }

    let port: UInt16
    let password: String?
    private let directory: String
    private var process: Process?

    /// Path of `name` on PATH, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/sbin", "/usr/bin"] {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    init(password: String? = nil) throws {
        guard Self.which("redis-server") != nil else { throw Failure.notInstalled }
        port = try Self.freePort()
        self.password = password
        directory = NSTemporaryDirectory() + "gatehouse-redis-\(getpid())-\(port)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts the server and waits (at most 5 s) until it accepts connections.
    func start() throws {
        guard process == nil else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.which("redis-server")!)
        var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                         "--dir", directory, "--daemonize", "no", "--loglevel", "warning"]
        if let password { arguments += ["--requirepass", password] }
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if Self.canConnect(port: port) { return }
            guard p.isRunning else { break }
            usleep(20_000)
        }
        stop()
        throw Failure.didNotStart("port \(port) not accepting after 5 s")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 3 s) and waits for it to exit.
    func stop() {
        guard let p = process else { return }
        process = nil
        if p.isRunning {
            Glibc.kill(p.processIdentifier, SIGCONT)
            p.terminate()
            let deadline = Date().addingTimeInterval(3)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
        }
        p.waitUntilExit()
    }

    /// Kills the server at once (SIGKILL, even while paused): its connections are reset
    /// without any pending reply being answered.
    func killHard() {
        guard let p = process else { return }
        process = nil
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    /// Freezes (SIGSTOP) or resumes (SIGCONT) the server: connections stay open, nothing answers.
    func pause() { if let p = process { Glibc.kill(p.processIdentifier, SIGSTOP) } }
    func resume() { if let p = process { Glibc.kill(p.processIdentifier, SIGCONT) } }

    /// Runs `redis-cli` against this server; its stdout lines (empty lines dropped).
    func cli(_ arguments: String..., db: Int = 0) -> [String] {
        guard let path = Self.which("redis-cli") else { return [] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        var all = ["-h", "127.0.0.1", "-p", String(port), "-n", String(db), "--no-raw"]
        if let password { all += ["--no-auth-warning", "-a", password] }
        p.arguments = all + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return [] }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// The `--raw` form of ``cli(_:db:)``: values exactly as stored.
    func raw(_ arguments: String..., db: Int = 0) -> [String] {
        guard let path = Self.which("redis-cli") else { return [] }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        var all = ["-h", "127.0.0.1", "-p", String(port), "-n", String(db), "--raw"]
        if let password { all += ["--no-auth-warning", "-a", password] }
        p.arguments = all + arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return [] }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.didNotStart("socket") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw Failure.didNotStart("bind") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    static func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
