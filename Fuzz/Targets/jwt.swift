/// Fuzz target `jwt`: the JWS verifier, its cache, the JSON parser and the JWK Set parser
/// (GatehouseAuth, SPEC §5.1), with the issuers and keys of the unit tests' fixture
/// (Tests/GatehouseAuthTests/Fixtures/tokens.json: an HS256/384/512 secret, RSA, RSA-PSS, EC
/// P-256/P-384 and Ed25519 public keys, and a "mixed" set).
///
/// The first byte chooses what the rest is (`& 3`) and which issuers a route allows (`>> 2`):
/// - 0: a token, verified as it is;
/// - 1: `HEADER\nCLAIMS`, two JSON texts made into a token signed here with the fixture's
///   HMAC secret (HS256/384/512 from `>> 4`), so that the claim checks after the signature are
///   reached;
/// - 2: a JWK Set document, parsed, and if it has keys, used to verify a fixture token;
/// - 3: a JSON text for the parser alone.
///
/// Invariants:
/// - the cache (``VerifiedTokenCache``) and the full verifier give the same result, on a miss
///   and on a hit, for the route's issuers, for another route's, and an hour later;
/// - a token signed here that verifies: its issuer is `local` (the only one with that secret),
///   its `iss`, `aud` and `exp` are what the issuer demands; and with one bit of its signature
///   flipped, the signature cut off, or its claims changed after signing, it is refused;
/// - JSON the parser accepts nests no deeper than ``JSONParser/maxDepth`` and Foundation's
///   parser reads the same strings and structure from it (a claim gatehouse checked means what
///   an upstream reads).
import Crypto
import Foundation
import GatehouseAuth
import GatehouseCore

private struct Fixture {
    let verifier: JWTVerifier
    let secret: [UInt8]
    let now: Int64
    let leeway: Int64
    let tokens: [String]
}

private let fixture: Fixture = {
    let path = ProcessInfo.processInfo.environment["FUZZ_AUTH_FIXTURE"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Tests/GatehouseAuthTests/Fixtures/tokens.json").path
    guard let data = FileManager.default.contents(atPath: path),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let issuers = object["issuers"] as? [String: String], let audience = object["audience"] as? String,
          let secretText = object["hmac_secret"] as? String, let secret = Base64URL.decode(secretText),
          let now = (object["now"] as? NSNumber)?.int64Value, let leeway = (object["leeway"] as? NSNumber)?.int64Value,
          let jwks = try? JSONSerialization.data(withJSONObject: object["jwks"]!),
          let mixed = try? JSONSerialization.data(withJSONObject: object["mixed_jwks"]!),
          let cases = object["cases"] as? [[String: Any]]
    else { fatalError("cannot read the JWT fixture at \(path) (set FUZZ_AUTH_FIXTURE)") }
    let asymmetric: Set<JWSAlgorithm> = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .es256, .es384, .eddsa]
    let verifier = try! JWTVerifier(issuers: [
        JWTIssuerConfig(name: "idp", issuer: issuers["idp"], audiences: [audience], algorithms: asymmetric,
                        keys: JWKSet(jwksJSON: Array(jwks))),
        JWTIssuerConfig(name: "local", issuer: issuers["local"], audiences: [audience],
                        algorithms: [.hs256, .hs384, .hs512], keys: JWKSet(hmacSecret: secret)),
        JWTIssuerConfig(name: "mixed", issuer: issuers["mixed"], audiences: nil, algorithms: [.hs256, .rs256],
                        keys: JWKSet(jwksJSON: Array(mixed))),
    ], leeway: leeway)
    return Fixture(verifier: verifier, secret: secret, now: now, leeway: leeway,
                   tokens: cases.compactMap { $0["token"] as? String })
}()

private let routeIssuers: [Set<String>?] = [nil, ["idp"], ["local"], ["mixed"], ["idp", "local"], []]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let choice = input.byte()
    let rest = input.rest()
    let allowed = routeIssuers[Int(choice >> 2) % routeIssuers.count]
    switch choice & 3 {
    case 0:
        checkAgreement(String(decoding: rest, as: UTF8.self), fixture.verifier, allowed)
    case 1:
        checkSigned(rest, algorithm: Int(choice >> 4) % 3, allowed)
    case 2:
        checkKeySet(Array(rest), token: fixture.tokens.isEmpty ? "" : fixture.tokens[Int(choice >> 2) % fixture.tokens.count])
    default:
        checkJSON(Array(rest))
    }
    return 0
}

/// The cache and the verifier agree, on a miss, on a hit, for another route, an hour later.
@discardableResult
private func checkAgreement(_ token: String, _ verifier: JWTVerifier, _ allowed: Set<String>?) -> Result<VerifiedToken, Reason> {
    let cache = VerifiedTokenCache(capacity: 8, negativeCapacity: 8)
    let now = fixture.now
    let direct = verifier.verify(token, now: now, allowedIssuers: allowed)
    let what = "token \(token.debugDescription) route issuers \(String(describing: allowed))"
    expect(cache.verify(token, with: verifier, now: now, allowedIssuers: allowed) == direct, "cache miss differs: \(what)")
    expect(cache.verify(token, with: verifier, now: now, allowedIssuers: allowed) == direct, "cache hit differs: \(what)")
    for other in [nil, ["local"], ["idp", "mixed"]] as [Set<String>?] {
        expect(cache.verify(token, with: verifier, now: now, allowedIssuers: other)
                   == verifier.verify(token, now: now, allowedIssuers: other),
               "cache differs for route issuers \(String(describing: other)): \(what)")
    }
    let later = now + 3600
    expect(cache.verify(token, with: verifier, now: later, allowedIssuers: allowed)
               == verifier.verify(token, now: later, allowedIssuers: allowed), "cache differs an hour later: \(what)")
    return direct
}

private func checkSigned(_ bytes: UnsafeBufferPointer<UInt8>, algorithm: Int, _ allowed: Set<String>?) {
    let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
    let header = Array(bytes[..<newline])
    let claims = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
    let signingInput = base64URL(header) + "." + base64URL(claims)
    let token = signingInput + "." + base64URL(sign(signingInput, algorithm: algorithm))
    guard case .success(let verified) = checkAgreement(token, fixture.verifier, allowed) else { return }

    let what = "token \(token) (header \(String(decoding: header, as: UTF8.self).debugDescription), claims \(String(decoding: claims, as: UTF8.self).debugDescription))"
    expect(verified.issuerName == "local", "signed with local's secret, verified as \(verified.issuerName): \(what)")
    guard case .object(let object)? = try? JSONParser.parse(claims) else { violated("verified claims are not an object: \(what)") }
    expect(object["iss"] == .string("https://local.test"), "wrong iss passed: \(what)")
    let audience: Bool
    switch object["aud"] {
    case .string(let value)?: audience = value == "gatehouse"
    case .array(let values)?: audience = values.contains(.string("gatehouse"))
    default: audience = false
    }
    expect(audience, "wrong aud passed: \(what)")
    guard case .number(let exp)? = object["exp"] else { violated("exp missing or not a number passed: \(what)") }
    expect(exp.doubleValue + Double(fixture.leeway) > Double(fixture.now), "expired token passed: \(what)")

    // Tampering after signing is always refused.
    var parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    let signature = Base64URL.decode(parts[2])!
    for (index, bit) in [(0, 0), (signature.count - 1, 7), (signature.count / 2, 3)] {
        var flipped = signature
        flipped[index] ^= 1 << bit
        parts[2] = base64URL(flipped)
        expect(!isSuccess(fixture.verifier.verify(parts.joined(separator: "."), now: fixture.now, allowedIssuers: allowed)),
               "a flipped signature bit passed: \(what)")
    }
    expect(!isSuccess(fixture.verifier.verify(signingInput + ".", now: fixture.now, allowedIssuers: allowed)),
           "a token without its signature passed: \(what)")
    let changedClaims = base64URL(header) + "." + base64URL(claims + Array(" ".utf8)) + "." + base64URL(signature)
    expect(!isSuccess(fixture.verifier.verify(changedClaims, now: fixture.now, allowedIssuers: allowed)),
           "claims changed after signing passed: \(what)")
}

private func checkKeySet(_ bytes: [UInt8], token: String) {
    guard let keys = try? JWKSet(jwksJSON: bytes), !keys.isEmpty else { return }
    let verifier = JWTVerifier(issuers: [
        JWTIssuerConfig(name: "fuzzed", issuer: nil, audiences: nil, algorithms: Set(JWSAlgorithm.allCases), keys: keys),
    ])
    _ = keys.keys.map { key in JWSAlgorithm.allCases.map { key.canVerify($0) } }
    checkAgreement(token, verifier, nil)
}

private func checkJSON(_ bytes: [UInt8]) {
    guard let value = try? JSONParser.parse(bytes) else { return }
    let what = "JSON \(String(decoding: bytes, as: UTF8.self).debugDescription)"
    expect(depth(value) <= JSONParser.maxDepth, "nested deeper than \(JSONParser.maxDepth): \(what)")
    guard let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
        if containsLargeNumber(value) { return }  // Foundation refuses numbers a Double cannot hold
        violated("accepted by gatehouse, refused by Foundation: \(what)")
    }
    expect(sameStructure(value, foundation), "read differently by Foundation: \(what)")
}

private func depth(_ value: JSONValue) -> Int {
    switch value {
    case .array(let elements): return 1 + (elements.map(depth).max() ?? 0)
    case .object(let object): return 1 + (object.members.map { depth($0.value) }.max() ?? 0)
    default: return 0
    }
}

private func containsLargeNumber(_ value: JSONValue) -> Bool {
    switch value {
    case .number(let number): return !number.doubleValue.isFinite || abs(number.doubleValue) > 1e300
    case .array(let elements): return elements.contains(where: containsLargeNumber)
    case .object(let object): return object.members.contains { containsLargeNumber($0.value) }
    default: return false
    }
}

/// Strings, names, nesting and literals the same; numbers within rounding.
private func sameStructure(_ value: JSONValue, _ other: Any) -> Bool {
    switch value {
    case .null: return other is NSNull
    case .string(let string): return (other as? String) == string
    case .bool(let bool): return (other as? NSNumber).map { $0.boolValue == bool } ?? (other as? Bool == bool)
    case .number(let number):
        guard let theirs = (other as? NSNumber)?.doubleValue else { return false }
        let ours = number.doubleValue
        return ours == theirs || abs(ours - theirs) <= abs(ours) * 1e-9
    case .array(let elements):
        guard let theirs = other as? [Any], theirs.count == elements.count else { return false }
        return zip(elements, theirs).allSatisfy { sameStructure($0, $1) }
    case .object(let object):
        guard let theirs = other as? [String: Any], theirs.count == object.count else { return false }
        return object.members.allSatisfy { member in theirs[member.name].map { sameStructure(member.value, $0) } ?? false }
    }
}

private func isSuccess(_ result: Result<VerifiedToken, Reason>) -> Bool {
    if case .success = result { return true }
    return false
}

private func sign(_ input: String, algorithm: Int) -> [UInt8] {
    let key = SymmetricKey(data: fixture.secret)
    switch algorithm {
    case 0: return Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: key))
    case 1: return Array(HMAC<SHA384>.authenticationCode(for: Array(input.utf8), using: key))
    default: return Array(HMAC<SHA512>.authenticationCode(for: Array(input.utf8), using: key))
    }
}

private func base64URL(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 4 / 3 + 3)
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 3, bytes.count)]
        var value = 0
        for byte in chunk { value = value << 8 | Int(byte) }
        value <<= 8 * (3 - chunk.count)
        for position in 0...chunk.count { out.append(alphabet[(value >> (18 - 6 * position)) & 63]) }
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}
