import CLibevent
import GatehousePolicy

/// The framing and `Host` rules of RFC 9112 that evhttp 2.1 does not enforce, checked before
/// anything else looks at a request: a request that breaks them is refused with 400, because a
/// proxy that reads such a head differently from its upstream is how requests get smuggled.
enum RequestHead {
    /// nil when the head is acceptable; otherwise what is wrong (for debugging, never sent).
    ///
    /// One walk of the list. Each name is read once: its bytes checked as `tchar` and counted,
    /// then compared with the one name of that length the rules care about (a chain of
    /// comparisons per field, in a closure, cost ~350 instructions a field;
    /// deploy/bench/callgrind-jwt.sh).
    static func problem(_ headers: HeaderList, httpMinor: Int32, absoluteForm: Bool) -> String? {
        var contentLength: String? = nil
        var transferEncodings = 0
        var transferEncodingIsChunked = false
        var hosts = 0
        var authorizations = 0
        var connectionTokens = ConnectionTokens()
        var entry = gh_headers_first(headers.queue)
        while let field = entry {
            entry = gh_header_next(field)
            let name = field.pointee.key!, value = field.pointee.value!
            // §5.1: no whitespace (or anything else) but tchar in a field name.
            let length = PlainBytes.tokenSpan(name)
            if name[length] != 0 { return "bad header name" }
            switch length {
            case 0:
                return "empty header name"
            case 4 where HeaderRules.nameEquals(name, constant: "host"):
                hosts += 1
                if !isAcceptableHost(value) { return "bad Host" }
            case 10 where HeaderRules.nameEquals(name, constant: "connection"):
                connectionTokens.add(value)
            case 13 where HeaderRules.nameEquals(name, constant: "authorization"):
                authorizations += 1
            case 14 where HeaderRules.nameEquals(name, constant: "content-length"):
                let v = String(cString: value).trimmingCharacters(in: " \t")
                if v.isEmpty || !v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { return "bad Content-Length" }
                if let seen = contentLength, seen != v { return "conflicting Content-Length" }   // §6.3
                contentLength = v
            case 17 where HeaderRules.nameEquals(name, constant: "transfer-encoding"):
                transferEncodings += 1
                transferEncodingIsChunked = String(cString: value).trimmingCharacters(in: " \t").lowercased() == "chunked"
            default:
                break
            }
        }
        if connectionTokens.tooMany { return "more than 64 Connection tokens" }           // SPEC §3.2
        // §6.1: the only transfer coding gatehouse reads is a lone `chunked`.
        if transferEncodings > 0 && (transferEncodings > 1 || !transferEncodingIsChunked) { return "unsupported Transfer-Encoding" }
        if hosts > 1 { return "several Host lines" }                                // §3.2
        if hosts == 0 && httpMinor >= 1 && !absoluteForm { return "HTTP/1.1 without Host" }
        if authorizations > 1 { return "several Authorization lines" }              // which one counts is ambiguous
        return nil
    }

    /// `host[:port]` of RFC 3986: reg-name or IP literal characters only (no userinfo, spaces,
    /// controls).
    private static func isAcceptableHost(_ value: UnsafePointer<CChar>) -> Bool {
        var i = 0
        while value[i] != 0 {
            let c = UInt8(bitPattern: value[i])
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "_"):
                i += 1
            default:
                return false
            }
        }
        return i > 0
    }
}
