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
        subcommands: [Run.self, Check.self, Explain.self, PolicyTest.self, Echo.self, HashPassword.self]
    )
}

enum GatehouseVersion {
    static let current = "gatehouse \(BuildInfo.version)"
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

/// `gatehouse test` (SPEC §15.1). Exit 0 when every case passes, 1 when one fails, 2 when the
/// configuration or a cases file is invalid (nothing runs then).
struct PolicyTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run policy test cases against the configuration, without starting a server.")
    @Option(name: .long, help: "The config file.") var config = "./gatehouse.yaml"
    @Option(name: .long, help: "Also write the results as JUnit XML to this file.") var junit: String?
    @Argument(help: "Cases files (YAML: cases: [...]).") var cases: [String]

    func validate() throws {
        if cases.isEmpty { throw ValidationError("give at least one cases file") }
    }

    func run() throws {
        let result = ConfigLoader.load(path: config, cpuCount: Machine.cpuCount, tlsCheck: ServerTLSContext.check)
        guard let loaded = result.config else {
            let report = CheckReport.render(result: result, configPath: config)
            FileOutput.write(report.stderr, fd: 2)
            FileOutput.write(report.stdout, fd: 1)
            throw ExitCode(2)
        }
        let read = PolicyTestCases.load(paths: cases, config: loaded)
        let problems = CheckReport.render(result: ConfigLoadResult(config: nil, problems: read.problems), configPath: config)
        FileOutput.write(problems.stderr, fd: 2)
        if !read.errors.isEmpty {
            let count = read.errors.count
            FileOutput.write("cases have \(count) \(count == 1 ? "error" : "errors"); nothing was run\n", fd: 1)
            throw ExitCode(2)
        }
        let results = read.cases.map { PolicyTester.run($0, config: loaded) }
        FileOutput.write(PolicyTester.report(results), fd: 1)
        if let junit {
            guard FileOutput.replace(junit, with: PolicyTester.junit(results)) else {
                FileOutput.write("cannot write \(junit)\n", fd: 2)
                throw ExitCode(2)
            }
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
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
    /// Writes `text` to a new file at `path` (replacing one that is there); false on failure.
    static func replace(_ path: String, with text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        write(text, fd: fd)
        return close(fd) == 0
    }

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

