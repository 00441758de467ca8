import CLibevent
import Glibc
import GatehouseDecision

/// A thin view of an evhttp header list (`struct evkeyvalq`). Lookups are case-insensitive,
/// as evhttp's are. Valid only while the request that owns the list is alive. The decision
/// pipeline reads it as a ``HeaderSource``: values are copied out only when looked up.
struct HeaderList: HeaderSource {
    let queue: UnsafeMutablePointer<evkeyvalq>

    init(_ queue: UnsafeMutablePointer<evkeyvalq>) { self.queue = queue }

    subscript(name: String) -> String? {
        evhttp_find_header(queue, name).map { String(cString: $0) }
    }

    /// The literal's own NUL-terminated bytes go to evhttp: no copy of the name.
    func first(_ name: StaticString) -> String? {
        evhttp_find_header(queue, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)).map { String(cString: $0) }
    }

    /// The first value of `name` as evhttp holds it (valid while the request lives): no copy.
    func raw(_ name: StaticString) -> UnsafePointer<CChar>? {
        evhttp_find_header(queue, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self))
    }

    func joined(_ lowercasedName: StaticString, separator: StaticString) -> String? {
        joined(lowercasedName.description, separator: separator.description)
    }

    /// Every value of the header `lowercasedName`, joined with ", " (RFC 9110 §5.3), or nil when
    /// absent. The name is given in lowercase (a literal): no lowercasing per call.
    func joined(_ lowercasedName: String, separator: String = ", ") -> String? {
        var first: String?
        var values: [String] = []
        forEach { key, value in
            guard HeaderRules.nameEquals(key, lowercasedName) else { return }
            if first == nil { first = String(cString: value) } else { values.append(String(cString: value)) }
        }
        guard let first else { return nil }
        return values.isEmpty ? first : ([first] + values).joined(separator: separator)
    }

    /// One walk of the list comparing the literal's own bytes (no String per name), the value
    /// copied out only when the field is there exactly once.
    func single(_ lowercasedName: StaticString) -> String? {
        let wanted = UnsafeRawPointer(lowercasedName.utf8Start).assumingMemoryBound(to: CChar.self)
        var found: UnsafeMutablePointer<CChar>? = nil
        var entry = gh_headers_first(queue)
        while let kv = entry {
            // The first byte, folded, rules most names out without a call (names are ASCII
            // letters, digits and token characters; `| 0x20` folds only letters into `wanted`'s).
            if kv.pointee.key[0] | 0x20 == wanted[0], evutil_ascii_strcasecmp(kv.pointee.key, wanted) == 0 {
                if found != nil { return nil }
                found = kv.pointee.value
            }
            entry = gh_header_next(kv)
        }
        return found.map { String(cString: $0) }
    }

    func add(_ name: String, _ value: String) {
        _ = evhttp_add_header(queue, name, value)
    }

    /// ``add(_:_:)`` with a constant name, without a C-string copy of either: a `String` passed
    /// where C wants a pointer is copied into a new array (an allocation) on every call, while
    /// `withCString` hands over a long string's own storage.
    func add(constant name: StaticString, _ value: String) {
        _ = value.withCString { evhttp_add_header(queue, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), $0) }
    }

    func set(_ name: String, _ value: String) {
        _ = evhttp_remove_header(queue, name)
        _ = evhttp_add_header(queue, name, value)
    }

    func remove(_ name: String) {
        while evhttp_remove_header(queue, name) == 0 {}
    }

    /// Calls `body` with each header's raw name and value, in order.
    func forEach(_ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Void) {
        var entry = gh_headers_first(queue)
        while let kv = entry {
            body(kv.pointee.key, kv.pointee.value)
            entry = gh_header_next(kv)
        }
    }
}

/// A fixed set of lowercase header names, tested against a header's raw NUL-terminated name
/// ignoring ASCII case (and, when `foldUnderscore`, reading `_` as `-`). The names sit in one
/// byte array with (offset, length) pairs, so a test touches no reference counts and skips
/// every name of another length: it runs for each header of each request, against a dozen
/// names or more.
struct HeaderNameSet: Sendable {
    private let bytes: [UInt8]
    private let entries: [(offset: Int, length: Int)]
    private let foldUnderscore: Bool

    init(_ names: [String], foldUnderscore: Bool = false) {
        var bytes: [UInt8] = []
        var entries: [(offset: Int, length: Int)] = []
        for name in names {
            entries.append((bytes.count, name.utf8.count))
            bytes.append(contentsOf: name.lowercased().utf8)
        }
        self.bytes = bytes
        self.entries = entries
        self.foldUnderscore = foldUnderscore
    }

    func contains(_ name: UnsafePointer<CChar>) -> Bool {
        let length = strlen(name)
        return bytes.withUnsafeBufferPointer { stored in
            entries.withUnsafeBufferPointer { entries in
                for entry in entries where entry.length == length {
                    var i = 0
                    while i < length {
                        var c = UInt8(bitPattern: name[i])
                        if c >= 65 && c <= 90 { c |= 0x20 } else if foldUnderscore && c == 0x5F { c = 0x2D }
                        if c != stored[entry.offset + i] { break }
                        i += 1
                    }
                    if i == length { return true }
                }
                return false
            }
        }
    }
}

/// Which headers cross the gateway (SPEC §7.1). Header names are compared case-insensitively
/// on their bytes, without building Strings for the common case.
enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 §7.6.1) plus the proxy ones SPEC §7.1 names.
    static let hopByHop: [String] = ["connection", "keep-alive", "te", "trailer", "transfer-encoding",
                                     "upgrade", "proxy-authorization", "proxy-connection"]

    // The names a `Connection` header lists are hop-by-hop too: see `ConnectionTokens`.

    /// True when the NUL-terminated `name` equals `lowercased` ignoring ASCII case.
    @inline(__always)
    static func nameEquals(_ name: UnsafePointer<CChar>, _ lowercased: String) -> Bool {
        var lowercased = lowercased
        return lowercased.withUTF8 { nameEquals(name, bytes: $0.baseAddress, count: $0.count) }
    }

    /// ``nameEquals(_:_:)-(_,String)`` for a constant name: no String to open.
    @inline(__always)
    static func nameEquals(_ name: UnsafePointer<CChar>, constant lowercased: StaticString) -> Bool {
        nameEquals(name, bytes: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount)
    }

    /// The comparison of both: `count` lowercase bytes at `expected` against `name` up to its NUL.
    @inline(__always)
    private static func nameEquals(_ name: UnsafePointer<CChar>, bytes expected: UnsafePointer<UInt8>?, count: Int) -> Bool {
        var i = 0
        while i < count {
            let c = UInt8(bitPattern: name[i])
            if c == 0 || (c | (c >= 65 && c <= 90 ? 0x20 : 0)) != expected![i] { return false }
            i += 1
        }
        return name[i] == 0
    }

    private static let corsPrefix: StaticString = "access-control-"
    private static let xAuthPrefix: StaticString = "x-auth-"

    /// True for the CORS response headers (`Access-Control-Allow-*`, `-Expose-Headers`,
    /// `-Max-Age`), which the gateway owns when a CORS policy applies (SPEC §6). A `Vary` the
    /// upstream set is kept; the gateway adds its own `Vary: Origin`.
    @inline(__always)
    static func isCORSResponseHeader(_ name: UnsafePointer<CChar>) -> Bool {
        let prefix = corsPrefix.utf8Start
        for i in 0..<corsPrefix.utf8CodeUnitCount {
            let c = UInt8(bitPattern: name[i])
            if c == 0 || (c | (c >= 65 && c <= 90 ? 0x20 : 0)) != prefix[i] { return false }
        }
        return true
    }

    /// True when `name` starts with `x-auth-` in any letter case, with `_` standing for `-`
    /// too (CGI, WSGI and PHP upstreams read `X_Auth_Subject` as `X-Auth-Subject`).
    @inline(__always)
    static func isXAuth(_ name: UnsafePointer<CChar>) -> Bool {
        let prefix = xAuthPrefix.utf8Start
        for i in 0..<xAuthPrefix.utf8CodeUnitCount {
            let c = folded(UInt8(bitPattern: name[i]))
            if c == 0 || c != prefix[i] { return false }
        }
        return true
    }

    /// ASCII lowercase, `_` as `-`.
    @inline(__always)
    private static func folded(_ c: UInt8) -> UInt8 {
        if c >= 65 && c <= 90 { return c | 0x20 }
        return c == 0x5F ? 0x2D : c
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
