import GatehouseSessions

/// `sessions.store` (SPEC §2): `memory` or `redis://[:password@]host[:port][/db]`. The password
/// is a secret: no message repeats it.
extension AddressSyntax {
    static let defaultRedisPort: UInt16 = 6379
    private static let storeHint = "expected memory or a URL like redis://127.0.0.1:6379/0"

    static func sessionStore(_ text: String) -> Result<SessionStoreSetting, SyntaxError> {
        if text == "memory" { return .success(.memory) }
        let lower = text.lowercased()
        if lower.hasPrefix("rediss://") {
            return .failure(SyntaxError("rediss:// (Redis over TLS): not supported yet"))
        }
        guard lower.hasPrefix("redis://") else {
            return .failure(SyntaxError("\(storeHint), got \(quoted(redacted(text)))"))
        }
        let rest = String(text.dropFirst("redis://".count))
        let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
        let tail = rest.dropFirst(authority.count)

        var password: String?
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            switch redisPassword(authority[..<at]) {
            case .failure(let error): return .failure(error)
            case .success(let value): password = value
            }
            hostPort = String(authority[authority.index(after: at)...])
        }
        if !hostPort.hasPrefix("["), hostPort.filter({ $0 == ":" }).count > 1 {
            return .failure(SyntaxError("an IPv6 address needs brackets, like redis://[::1]:6379/0, got \(quoted(hostPort))"))
        }
        guard !hostPort.isEmpty, let (hostPart, portPart) = splitHostPort(hostPort) else {
            return .failure(SyntaxError("\(storeHint), got \(quoted(redacted(text)))"))
        }
        let host: String
        switch self.host(hostPart) {
        case .failure(let error): return .failure(error)
        case .success(let value): host = value
        }
        var port = defaultRedisPort
        if let portPart {
            switch self.port(portPart) {
            case .failure(let error): return .failure(error)
            case .success(let value): port = value
            }
        }
        return redisDatabase(tail).map { .redis(host: host, port: port, db: $0, password: password) }
    }

    /// The user info before `@`: `:password`, or `default:password` (Redis 6 names the user of
    /// a password-only `AUTH` `default`). Percent-decoded.
    private static func redisPassword(_ userInfo: Substring) -> Result<String, SyntaxError> {
        guard let colon = userInfo.firstIndex(of: ":") else {
            return .failure(SyntaxError("a Redis URL holds a password, not a user name: write redis://:PASSWORD@host"))
        }
        let user = userInfo[..<colon]
        guard user.isEmpty || user == "default" else {
            return .failure(SyntaxError("Redis ACL users other than \"default\": not supported yet; "
                                            + "write redis://:PASSWORD@host"))
        }
        let encoded = userInfo[userInfo.index(after: colon)...]
        guard !encoded.isEmpty else { return .failure(SyntaxError("the Redis password after \":\" is empty")) }
        guard let bytes = PercentEncoding.decode(encoded.utf8, plusAsSpace: false), let password = String(validating: bytes, as: UTF8.self),
              !password.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return .failure(SyntaxError(
                "the Redis password is not valid percent-encoded text (write % as %25, @ as %40, / as %2F)"))
        }
        return .success(password)
    }

    /// What follows the authority: nothing, `/` or `/N` (the database number).
    private static func redisDatabase(_ tail: Substring) -> Result<Int, SyntaxError> {
        if tail.contains("?") || tail.contains("#") {
            // Not quoted: a query may carry a password.
            return .failure(SyntaxError("a Redis URL here has no query or fragment (write the password as redis://:PASSWORD@host)"))
        }
        if tail.isEmpty || tail == "/" { return .success(0) }
        let digits = tail.dropFirst()
        guard digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let db = Int(digits) else {
            let shown = tail.contains("@") ? "" : ", got \(quoted(String(tail)))"
            return .failure(SyntaxError("expected a database number after the host, like /0\(shown)"))
        }
        return .success(db)
    }

    /// `text` with the user info of a `scheme://user:password@host` URL replaced by `***`.
    static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text.contains("@") ? "***" : text }
        let rest = text[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@") else { return text }
        return String(text[..<schemeEnd.upperBound]) + "***" + String(text[at...])
    }
}
