import Glibc
import GatehouseDecision

/// The last `Authorization` value a client connection sent, kept as the `String` the decision
/// reads (``RequestFacts/authorization``). A client presents the same token on request after
/// request of a keep-alive connection; making the String anew each time (measure, check the
/// UTF-8, allocate, copy, and free it afterwards) cost ~900 instructions a request with a
/// 700-byte RS256 token (deploy/bench/callgrind-jwt.sh).
///
/// The same bytes make the same String, so a hit changes no answer. They are compared in two
/// steps: the last ``tailBytes`` (a JWS's signature) in constant time, then the rest with
/// `memcmp`, which stops at the first difference. A connection may carry the requests of several
/// clients (a front proxy's keep-alive pool): a request that does not end with the remembered
/// value's own signature learns nothing from the time its comparison takes.
enum AuthorizationMemo {
    static let tailBytes = 64

    /// `known`'s UTF-8 is the `length` bytes at `bytes`.
    static func holds(_ known: String, _ bytes: UnsafePointer<UInt8>, _ length: Int) -> Bool {
        guard known.utf8.count == length else { return false }
        return known.utf8.withContiguousStorageIfAvailable { stored -> Bool in
            guard let base = stored.baseAddress else { return length == 0 }
            let head = length - min(length, tailBytes)
            // Every byte of the tail, whatever the outcome.
            var difference: UInt8 = 0
            for i in head..<length { difference |= base[i] ^ bytes[i] }
            return difference == 0 && (head == 0 || memcmp(base, bytes, head) == 0)
        } ?? false
    }
}

/// A request's header list with its connection's ``AuthorizationMemo``: what the decision
/// reads of the request (``RequestFacts``) on the proxy path.
struct ConnectionHeaders: HeaderSource {
    let list: HeaderList
    let connection: ClientConnection

    func first(_ name: StaticString) -> String? { list.first(name) }
    func joined(_ lowercasedName: StaticString, separator: StaticString) -> String? {
        list.joined(lowercasedName, separator: separator)
    }
    func single(_ lowercasedName: StaticString) -> String? { list.single(lowercasedName) }
    func authorization() -> String? {
        guard let raw = list.raw("Authorization") else { return nil }
        let length = strlen(raw)
        let bytes = UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self)
        // A hit leaves the remembered value where it is: one retain, for the caller's copy.
        if let known = connection.lastAuthorization, AuthorizationMemo.holds(known, bytes, length) { return known }
        // As `String(cString:)` makes it (invalid UTF-8 repaired).
        let made = String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
        connection.lastAuthorization = made
        return made
    }
}
