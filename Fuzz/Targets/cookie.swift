/// Fuzz target `cookie`: the session cookie read from and removed from a `Cookie` header
/// (SessionCookie, SPEC §5.3, §7.1), and the login body (LoginRequest, SPEC §5.3) — both come
/// from any client before it is authenticated.
///
/// The first byte chooses: `& 3` 0 or 1, a `Cookie` header (the cookie name from `>> 2`);
/// 2, a form login body; 3, a JSON login body. Invariants:
/// - the value found holds no `;`;
/// - the header forwarded upstream (`strippingSelf`) never holds our cookie, and is the header
///   as sent when it held none;
/// - a `name=value` header of a plain token value gives that value;
/// - a login parsed has a non-empty user name of at most 256 bytes without control
///   characters, and a password of at most 1024 bytes.
import GatehouseSessions

private let cookies = [SessionCookie(), SessionCookie(name: "__Host-gh"), SessionCookie(name: "s")]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCookie(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let rest = input.rest()
    switch choice & 3 {
    case 0, 1:
        checkCookieHeader(String(decoding: rest, as: UTF8.self), cookies[Int(choice >> 2) % cookies.count])
    case 2:
        checkLogin(LoginRequest.parse(contentType: "application/x-www-form-urlencoded", body: Array(rest)))
    default:
        checkLogin(LoginRequest.parse(contentType: "application/json; charset=utf-8", body: Array(rest)))
    }
    return 0
}

private func checkCookieHeader(_ header: String, _ cookie: SessionCookie) {
    let what = "cookie \(cookie.name) in \(header.debugDescription)"
    let value = cookie.value(inCookieHeader: header)
    if let value { expect(!value.unicodeScalars.contains(";"), "value holds ; : \(what) -> \(value.debugDescription)") }
    let forwarded = cookie.strippingSelf(fromCookieHeader: header)
    if let forwarded {
        expect(cookie.value(inCookieHeader: forwarded) == nil,
               "our cookie is still in the forwarded header: \(what) -> \(forwarded.debugDescription)")
        if value == nil { expect(forwarded == header, "a header without our cookie was changed: \(what)") }
    }
    // The plain case must work: `name=token` alone.
    let plain = cookie.name + "=" + String(header.unicodeScalars.filter { $0.isASCII && isTokenScalar($0) })
    let token = String(plain.dropFirst(cookie.name.count + 1))
    if !token.isEmpty {
        expect(cookie.value(inCookieHeader: plain) == token, "name=token not read: \(plain.debugDescription)")
        expect(cookie.strippingSelf(fromCookieHeader: plain) == nil, "name=token not stripped: \(plain.debugDescription)")
    }
}

private func isTokenScalar(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar {
    case "a"..."z", "A"..."Z", "0"..."9", "-", "_", ".", "~", "!": return true
    default: return false
    }
}

private func checkLogin(_ request: LoginRequest?) {
    guard let request else { return }
    let name = request.username
    expect(!name.isEmpty && name.utf8.count <= LoginRequest.maxUsernameBytes, "user name length: \(name.debugDescription)")
    expect(!name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "control in user name: \(name.debugDescription)")
    expect(request.password.count <= LoginRequest.maxPasswordBytes, "password of \(request.password.count) bytes")
}
