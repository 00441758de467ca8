import GatehouseAuth
import GatehouseCore
import GatehousePolicy
import Yams

/// Reads one case of a cases file, checking it against the configuration.
struct CaseReader {
    let config: GatewayConfig
    /// The cases file's directory: `key_file` is relative to it.
    let directory: String
    let diagnostics: Diagnostics

    /// The case at `node`, or nil when it is unusable (every problem reported).
    func read(_ node: ConfigNode) -> PolicyTestCase? {
        guard let fields = node.fields(PolicyTestCases.caseKeys, diagnostics) else { return nil }
        let name = fields.required("name", diagnostics)?.string(diagnostics)
        if let name, name.isEmpty || name.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            diagnostics.error(fields["name"]!, "expected a name without control characters, got \(quoted(name))")
        }
        let request = fields.required("request", diagnostics).flatMap(readRequest)
        let token = fields["token"].flatMap(readToken)
        let user = fields["session"].flatMap(readSession)
        let expect = fields.required("expect", diagnostics).flatMap(readExpect)
        guard let name, let request, let expect else { return nil }
        return PolicyTestCase(name: name, location: node.location, method: request.method, target: request.target,
                              headers: request.headers, client: request.client, token: token, sessionUser: user,
                              expect: expect)
    }

    // MARK: request

    private func readRequest(_ node: ConfigNode) -> (method: String, target: String, headers: [(String, String)], client: String)? {
        guard let fields = node.fields(PolicyTestCases.requestKeys, diagnostics) else { return nil }
        var method = "GET"
        if let value = fields["method"], let text = value.string(diagnostics) {
            if !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) {
                method = text
            } else {
                diagnostics.error(value, "expected a method in capitals (GET, POST, ...), got \(value.described)")
            }
        }
        let target = fields.required("path", diagnostics)?.string(diagnostics)
        if let target, !visible(target) {
            diagnostics.error(fields["path"]!, "expected a request target without spaces or control characters, got \(quoted(target))")
        }
        let headers = fields["headers"].map(readHeaders) ?? []
        var client = PolicyTestCases.defaultClient
        if let value = fields["client"], let text = value.string(diagnostics) {
            if IPAddress(text) != nil { client = text } else { diagnostics.error(value, "expected an IP address, got \(value.described)") }
        }
        guard let target else { return nil }
        return (method, target, headers, client)
    }

    /// `headers: {Name: value}`: names are tokens, values have no control characters (a real
    /// client's would be refused with 400 before any decision).
    private func readHeaders(_ node: ConfigNode) -> [(String, String)] {
        guard let entries = node.entries(diagnostics) else { return [] }
        var headers: [(String, String)] = []
        for entry in entries {
            let value = node.named(entry.key, entry.value)
            guard !entry.key.isEmpty, entry.key.utf8.allSatisfy(Self.isTokenByte) else {
                diagnostics.error(entry.keyLocation, "\(value.path): not a header name (RFC 9110 token characters only)")
                continue
            }
            guard let text = value.string(diagnostics) else { continue }
            guard text.utf8.allSatisfy({ ($0 >= 0x20 && $0 != 0x7F) || $0 == 0x09 }) else {
                diagnostics.error(value, "a header value must not contain control characters, got \(quoted(text))")
                continue
            }
            headers.append((entry.key, text))
        }
        return headers
    }

    private func visible(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7F }
    }

    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    // MARK: session

    private func readSession(_ node: ConfigNode) -> String? {
        guard let fields = node.fields(PolicyTestCases.sessionKeys, diagnostics),
              let userNode = fields.required("user", diagnostics), let user = userNode.string(diagnostics) else { return nil }
        guard let login = config.sessions?.login else {
            diagnostics.error(node, "the configuration has no sessions.login: there are no users to log in")
            return nil
        }
        guard login.verifier.users[user] != nil else {
            diagnostics.error(userNode, "no user \(quoted(user)) in the users file \(login.usersFile)")
            return nil
        }
        return user
    }

    // MARK: expect

    private func readExpect(_ node: ConfigNode) -> PolicyTestExpectation? {
        guard let fields = node.fields(PolicyTestCases.expectKeys, diagnostics) else { return nil }
        var expect = PolicyTestExpectation()
        if let value = fields["status"], let status = value.int(diagnostics) {
            if (100...599).contains(status) { expect.status = status } else { diagnostics.error(value, "expected an HTTP status (100-599), got \(status)") }
        }
        if fields.isWritten("route") {
            if let value = fields["route"] {
                if let name = value.string(diagnostics) {
                    if config.routes.routes.contains(where: { $0.name == name }) {
                        expect.route = .some(name)
                    } else {
                        diagnostics.error(value, "no route \(quoted(name)) in the configuration; routes: "
                                            + config.routes.routes.map(\.name).joined(separator: ", "))
                    }
                }
            } else {
                expect.route = .some(nil)
            }
        }
        if fields.isWritten("reason") {
            expect.reason = .some(fields["reason"].flatMap { $0.oneOf(Reason.self, diagnostics) })
        }
        if let value = fields["upstream_headers"] { expect.upstreamHeaders = readExpectedHeaders(value) }
        if !PolicyTestCases.expectKeys.contains(where: fields.isWritten) {
            diagnostics.error(node, "expected at least one of \(PolicyTestCases.expectKeys.joined(separator: ", "))")
            return nil
        }
        return expect
    }

    /// `upstream_headers: {Name: value}`; `Name: null` means the upstream must not receive it.
    private func readExpectedHeaders(_ node: ConfigNode) -> [(String, String?)] {
        guard let entries = node.entries(diagnostics) else { return [] }
        var headers: [(String, String?)] = []
        for entry in entries {
            let value = node.named(entry.key, entry.value)
            guard !entry.key.isEmpty, entry.key.utf8.allSatisfy(Self.isTokenByte) else {
                diagnostics.error(entry.keyLocation, "\(value.path): not a header name (RFC 9110 token characters only)")
                continue
            }
            if value.isNull { headers.append((entry.key, nil)); continue }
            if let text = value.string(diagnostics) { headers.append((entry.key, text)) }
        }
        return headers
    }
}
