import CLibevent
import GatehousePolicy

/// The framing and `Host` rules of RFC 9112 that evhttp 2.1 does not enforce, checked before
/// anything else looks at a request: a request that breaks them is refused with 400, because a
/// proxy that reads such a head differently from its upstream is how requests get smuggled.
enum RequestHead {
    /// nil when the head is acceptable; otherwise what is wrong (for debugging, never sent).
    static func problem(_ headers: HeaderList, httpMinor: Int32, absoluteForm: Bool) -> String? {
        var contentLength: String? = nil
        var transferEncodings = 0
        var transferEncodingIsChunked = false
        var hosts = 0
        var authorizations = 0
        var connectionTokens = ConnectionTokens()
        var problem: String? = nil
        headers.forEach { name, value in
            guard problem == nil else { return }
            // §5.1: no whitespace (or anything else) but tchar in a field name.
            var i = 0
            while name[i] != 0 {
                if !PlainBytes.isTokenByte(UInt8(bitPattern: name[i])) { problem = "bad header name"; return }
                i += 1
            }
            if i == 0 { problem = "empty header name"; return }
            if HeaderRules.nameEquals(name, constant: "content-length") {
                let v = String(cString: value).trimmingCharacters(in: " \t")
                if v.isEmpty || !v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) { problem = "bad Content-Length"; return }
                if let seen = contentLength, seen != v { problem = "conflicting Content-Length"; return }   // §6.3
                contentLength = v
            } else if HeaderRules.nameEquals(name, constant: "transfer-encoding") {
                transferEncodings += 1
                transferEncodingIsChunked = String(cString: value).trimmingCharacters(in: " \t").lowercased() == "chunked"
            } else if HeaderRules.nameEquals(name, constant: "host") {
                hosts += 1
                if !isAcceptableHost(value) { problem = "bad Host"; return }
            } else if HeaderRules.nameEquals(name, constant: "authorization") {
                authorizations += 1
            } else if HeaderRules.nameEquals(name, constant: "connection") {
                connectionTokens.add(value)
            }
        }
        if let problem { return problem }
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
