#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The credentials of a `POST sessions.login.path` body (SPEC §5.3): a form
/// (`application/x-www-form-urlencoded`, `username=…&password=…`) or JSON
/// (`application/json`, `{"username": …, "password": …}`).
///
/// ``parse(contentType:body:)`` returns nil — the server answers 400 — for another content
/// type, a body over ``maxBodyBytes``, a missing, repeated or non-string field, a bad `%`
/// escape, an empty username or one over ``maxUsernameBytes``, that is not UTF-8 or holds a
/// control character, and a password over ``maxPasswordBytes``. Other form fields and JSON
/// members are ignored. Not a hot path: JSON goes through Foundation's decoder.
public struct LoginRequest: Sendable, Equatable {
    /// The user name, as the users file spells it.
    public let username: String
    /// The password's bytes, exactly as sent (decoded from the form, UTF-8 from JSON).
    public let password: [UInt8]

    /// Longest username accepted, in UTF-8 bytes.
    public static let maxUsernameBytes = 256
    /// Longest password accepted, in bytes (bcrypt reads only 72 of them anyway).
    public static let maxPasswordBytes = 1024
    /// Longest body looked at.
    public static let maxBodyBytes = 16 * 1024

    /// Makes a request from values already checked elsewhere.
    public init(username: String, password: [UInt8]) {
        self.username = username
        self.password = password
    }

    /// Reads the body according to the `Content-Type` media type (parameters such as
    /// `charset` ignored; the form is read as UTF-8).
    public static func parse(contentType: String?, body: [UInt8]) -> LoginRequest? {
        guard let contentType, body.count <= maxBodyBytes else { return nil }
        switch mediaType(contentType) {
        case "application/x-www-form-urlencoded": return parseForm(body)
        case "application/json": return parseJSON(body)
        default: return nil
        }
    }

    private static func parseForm(_ body: [UInt8]) -> LoginRequest? {
        var username: [UInt8]?
        var password: [UInt8]?
        for pair in body.split(separator: UInt8(ascii: "&")) {
            let equals = pair.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            guard let name = PercentEncoding.decode(pair[..<equals], plusAsSpace: true) else { return nil }
            let rawValue = equals == pair.endIndex ? pair[equals...] : pair[pair.index(after: equals)...]
            switch name {
            case Array("username".utf8):
                guard username == nil,
                      let value = PercentEncoding.decode(rawValue, plusAsSpace: true, limit: maxUsernameBytes)
                else { return nil }
                username = value
            case Array("password".utf8):
                guard password == nil,
                      let value = PercentEncoding.decode(rawValue, plusAsSpace: true, limit: maxPasswordBytes)
                else { return nil }
                password = value
            default:
                continue
            }
        }
        guard let username, let password, let name = String(validating: username, as: UTF8.self) else { return nil }
        return checked(username: name, password: password)
    }

    private struct JSONBody: Decodable {
        let username: String
        let password: String
    }

    private static func parseJSON(_ body: [UInt8]) -> LoginRequest? {
        guard let decoded = try? JSONDecoder().decode(JSONBody.self, from: Data(body)) else { return nil }
        return checked(username: decoded.username, password: Array(decoded.password.utf8))
    }

    private static func checked(username: String, password: [UInt8]) -> LoginRequest? {
        guard !username.isEmpty, username.utf8.count <= maxUsernameBytes, password.count <= maxPasswordBytes,
              !username.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return nil }
        return LoginRequest(username: username, password: password)
    }

    /// `type/subtype` lower-cased, without parameters or spaces.
    private static func mediaType(_ contentType: String) -> String {
        var essence = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        while let first = essence.first, first == " " || first == "\t" { essence.removeFirst() }
        while let last = essence.last, last == " " || last == "\t" { essence.removeLast() }
        return essence.lowercased()
    }
}
