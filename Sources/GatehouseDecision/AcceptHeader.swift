import GatehouseAuth
import GatehouseCore

/// `Accept` negotiation for the login redirect: true when `text/html` is listed with q > 0 and
/// no `application/json` has an equal or higher q (RFC 9110 §12.5.1).
public enum AcceptHeader {
    public static func prefersHTML(_ accept: String?) -> Bool {
        guard let accept else { return false }
        var html: Double? = nil
        var json: Double? = nil
        for item in accept.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let type = parts.first.map(trimmed)?.lowercased() else { continue }
            var q = 1.0
            for param in parts.dropFirst() {
                let kv = trimmed(param).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].lowercased() == "q" { q = Double(trimmed(kv[1])) ?? 0 }
            }
            if type == "text/html" { html = max(html ?? 0, q) }
            if type == "application/json" { json = max(json ?? 0, q) }
        }
        guard let html, html > 0 else { return false }
        if let json, json >= html { return false }
        return true
    }

    /// Without the spaces and tabs around it.
    static func trimmed(_ text: Substring) -> Substring {
        var s = text
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}

/// Percent-encoding of a query component (RFC 3986 §2.1: everything but unreserved).
public enum URLEncoding {
    public static func component(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

extension Requirement {
    /// A session has roles but no token claims or scopes: a requirement on scopes or claims
    /// is never met by a session.
    public func evaluate(sessionRoles roles: [String]) -> Reason? {
        if !rolesAny.isEmpty, !rolesAny.contains(where: roles.contains) { return .insufficientRole }
        if !rolesAll.allSatisfy(roles.contains) { return .insufficientRole }
        if !scopesAll.isEmpty { return .insufficientScope }
        if !claims.isEmpty { return .claimMismatch }
        return nil
    }
}
