import ArgumentParser
import Glibc
import GatehouseConfig
import GatehouseCore
import GatehouseServer
import GatehouseSessions
import GatehouseTLS

/// The command line of SPEC §1.
@main
struct GatehouseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A reverse-proxy authentication gateway.",
        version: GatehouseVersion.current,
        subcommands: [Run.self, Check.self, Explain.self, Echo.self, HashPassword.self]
    )
}

enum GatehouseVersion {
    static let current = "gatehouse 0.1.0"
}

enum Machine {
    static var cpuCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start serving.")
    @Option(name: .long, help: "The config file.") var config = "./gatehouse.yaml"
    func run() throws {
        Gateway.installEventAllocator()
        let code = Gateway(configPath: config, cpuCount: Machine.cpuCount).run()
        if code != 0 { throw ExitCode(code) }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load and validate everything; print every problem.")
    @Option(name: .long, help: "The config file.") var config = "./gatehouse.yaml"
    func run() throws {
        let result = ConfigLoader.load(path: config, cpuCount: Machine.cpuCount, tlsCheck: ServerTLSContext.check)
        let report = CheckReport.render(result: result, configPath: config)
        if !report.stderr.isEmpty { FileOutput.write(report.stderr, fd: 2) }
        FileOutput.write(report.stdout, fd: 1)
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show which route matches a request and what the gateway would decide.")
    @Option(name: .long, help: "The config file.") var config = "./gatehouse.yaml"
    @Option(name: .long, help: "A request header, 'Name: value' (repeatable).") var header: [String] = []
    @Flag(name: .long, help: "Print one JSON object.") var json = false
    @Argument(help: "The request method.") var method: String
    @Argument(help: "The request target (path and query).") var path: String

    func run() throws {
        let result = ConfigLoader.load(path: config, cpuCount: Machine.cpuCount, tlsCheck: ServerTLSContext.check)
        guard let loaded = result.config else {
            let report = CheckReport.render(result: result, configPath: config)
            FileOutput.write(report.stderr, fd: 2)
            FileOutput.write(report.stdout, fd: 1)
            throw ExitCode(1)
        }
        var headers: [(String, String)] = []
        for h in header {
            guard let colon = h.firstIndex(of: ":") else { throw ValidationError("--header wants 'Name: value', got \(h)") }
            headers.append((String(h[..<colon]), String(h[h.index(after: colon)...]).trimmingCharacters(in: " ")))
        }
        let explanation = Explainer.explain(config: loaded, method: method, target: path, headers: headers)
        FileOutput.write((json ? explanation.json : explanation.text) + "\n", fd: 1)
    }
}

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A tiny upstream that echoes each request as JSON.")
    @Option(name: .long, help: "HOST:PORT to listen on.") var listen = "127.0.0.1:9000"
    func run() throws {
        let code = EchoServer.run(listen: listen)
        if code != 0 { throw ExitCode(code) }
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-password",
        abstract: "Read a password from stdin and print a bcrypt hash for the users file.")
    @Option(name: .long, help: "bcrypt cost (4-31).") var cost = PasswordVerifier.defaultCost

    func run() throws {
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(0, &buffer, buffer.count)
            if n <= 0 { break }
            input.append(contentsOf: buffer[0..<n])
            if input.count > 4096 { throw ValidationError("the password is longer than 4 KiB") }
        }
        if input.last == UInt8(ascii: "\n") { input.removeLast() }
        if input.last == UInt8(ascii: "\r") { input.removeLast() }
        guard !input.isEmpty else { throw ValidationError("the password is empty") }
        guard let hash = PasswordVerifier.hash(password: input, cost: cost) else {
            throw ValidationError("cannot hash: cost must be 4-31 and the password must not contain NUL")
        }
        FileOutput.write(hash + "\n", fd: 1)
    }
}

enum FileOutput {
    static func write(_ text: String, fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

