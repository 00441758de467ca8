/// Fuzz target `oidcstate`: what a browser sends back to the OIDC callback (SPEC §14.2) — the
/// attempt cookie (OIDCLoginState.open) and the `return_to` rule (OIDCLoginState.safeReturnTo).
///
/// Invariants:
/// - no input opens as an attempt unless it is the sealing of that very attempt (the MAC);
///   anything the fuzzer builds by sealing opens to the same attempt;
/// - `safeReturnTo` always gives a path of printable ASCII that starts with one `/` and not
///   `//` or `/\`, and is the identity on its own results.
import Crypto
import GatehouseSessions

private let key = OIDCLoginState.key(clientSecret: Array("fuzz-client-secret".utf8))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOIDCState(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let path = OIDCLoginState.safeReturnTo(text)
    let bytes = Array(path.utf8)
    expect(bytes.first == UInt8(ascii: "/"), "not a path: \(path.debugDescription)")
    expect(bytes.count == 1 || (bytes[1] != UInt8(ascii: "/") && bytes[1] != UInt8(ascii: "\\")), "open redirect: \(path.debugDescription)")
    expect(bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "bad byte in \(path.debugDescription)")
    expect(OIDCLoginState.safeReturnTo(path) == path, "not stable: \(path.debugDescription)")

    if let opened = OIDCLoginState.open(text, key: key, now: 1_900_000_000) {
        expect(opened.sealed(key: key) == text, "opened a value that is not the sealing of its attempt: \(text.debugDescription)")
    }
    var random = SystemRandomNumberGenerator()
    let attempt = OIDCLoginState.start(returnTo: text, now: 1_900_000_000, using: &random)
    expect(OIDCLoginState.open(attempt.sealed(key: key), key: key, now: 1_900_000_000) == attempt, "a sealed attempt did not open")
    return 0
}
