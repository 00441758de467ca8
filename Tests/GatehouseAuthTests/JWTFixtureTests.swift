import GatehouseCore
import XCTest
@testable import GatehouseAuth

/// Tokens minted by real libraries (PyJWT, joserfc) and the classic attacks, from
/// Fixtures/tokens.json (regenerate with Fixtures/mint.py). Each case names the behaviour it pins.
final class JWTFixtureTests: XCTestCase {
    func testEveryMintedCaseGetsItsExpectedOutcome() throws {
        let fixture = try TokenFixture.load()
        let verifier = try fixture.verifier()
        XCTAssertGreaterThan(fixture.cases.count, 80)
        for testCase in fixture.cases {
            let result = verifier.verify(testCase.token, now: fixture.now)
            XCTAssertEqual(result.outcome, testCase.expect, "\(testCase.name): \(testCase.note)")
            if case .success(let token) = result {
                XCTAssertEqual(token.issuerName, testCase.issuer, testCase.name)
                XCTAssertEqual(token.subject, testCase.subject, testCase.name)
                XCTAssertEqual(token.roles, testCase.roles, testCase.name)
                XCTAssertEqual(token.scopes, ["read:docs", "write:docs"], testCase.name)
                XCTAssertEqual(token.claims["sub"], "alice", testCase.name)
            }
        }
    }

    func testEveryAlgorithmIsCoveredByBothLibraries() throws {
        let names = Set(try TokenFixture.load().cases.filter { $0.expect == "ok" }.map(\.name))
        for library in ["pyjwt", "joserfc"] {
            for algorithm in JWSAlgorithm.allCases where algorithm != .ed25519 {
                XCTAssertTrue(names.contains("\(library) \(algorithm)"), "\(library) \(algorithm)")
            }
        }
        XCTAssertTrue(names.contains("joserfc Ed25519 (RFC 9864 name)"))
    }

    func testAttacksAreRefusedWithTheirReason() throws {
        let fixture = try TokenFixture.load()
        let verifier = try fixture.verifier()
        let byName = Dictionary(uniqueKeysWithValues: fixture.cases.map { ($0.name, $0) })
        // The attack table: every row must exist in the fixture and be refused as stated.
        let attacks: [(name: String, reason: Reason)] = [
            ("alg none unsigned", .algNotAllowed),
            ("alg None unsigned", .algNotAllowed),
            ("alg NONE unsigned", .algNotAllowed),
            ("alg nOnE unsigned", .algNotAllowed),
            ("alg none with the original signature", .algNotAllowed),
            ("alg none from PyJWT", .algNotAllowed),
            ("alg missing", .algNotAllowed),
            ("HS256 keyed with the RSA public key PEM (mixed)", .badSignature),
            ("HS256 keyed with the RSA public key PEM (mixed, kid)", .badSignature),
            ("HS256 keyed with the stripped RSA PEM (mixed)", .badSignature),
            ("HS256 keyed with the RSA public key PEM (idp)", .algNotAllowed),
            ("stripped signature", .badSignature),
            ("two parts", .malformedToken),
            ("tampered payload", .badSignature),
            ("flipped signature bit", .badSignature),
            ("attacker key in jwk header", .badSignature),
            ("attacker key in jwk header with a known kid", .badSignature),
            ("attacker jku header", .unknownKid),
            ("attacker jku header with a known kid", .badSignature),
            ("attacker x5u header", .badSignature),
            ("oversized token", .tokenTooLarge),
            ("garbage: empty", .malformedToken),
            ("garbage: garbage words", .malformedToken),
            ("garbage: random bytes", .malformedToken),
            ("garbage: bearer prefix left on", .malformedToken),
            ("padded base64", .malformedToken),
            ("standard base64 alphabet", .malformedToken),
            ("duplicate claim names", .malformedToken),
            ("duplicate header names", .malformedToken),
            ("crit header", .unsupportedCrit),
            ("ES256 with a DER signature", .badSignature),
            ("ES256 signature one byte short", .badSignature),
            ("ES512 is not supported", .algNotAllowed),
            ("RS256 signed by the PS256-only key", .badSignature),
            ("RS256 by the skipped 1024-bit key", .unknownKid),
        ]
        for attack in attacks {
            guard let testCase = byName[attack.name] else { XCTFail("missing fixture case \(attack.name)"); continue }
            XCTAssertEqual(verifier.verify(testCase.token, now: fixture.now).outcome, attack.reason.rawValue, attack.name)
        }
    }

    func testTheMixedIssuerHoldsOnlyAnRSAKeySoHMACCanNeverUseIt() throws {
        let fixture = try TokenFixture.load()
        let mixed = try JWKSet(jwksJSON: fixture.mixedJWKSText)
        XCTAssertEqual(mixed.keys.map(\.keyType), [.rsa])
        XCTAssertFalse(mixed.keys[0].canVerify(.hs256))
        XCTAssertTrue(mixed.keys[0].canVerify(.rs256))
    }

    func testTheFixtureJWKSKeepsUsableKeysAndWarnsAboutTheRest() throws {
        let set = try JWKSet(jwksJSON: try TokenFixture.load().jwksText)
        XCTAssertEqual(set.keys.compactMap(\.kid), ["rsa-1", "rsa-pss", "ec-256", "ec-384", "ed-1"])
        XCTAssertEqual(set.keys.first { $0.kid == "rsa-pss" }?.alg, .ps256)
        let warnings = set.warnings.joined(separator: "\n")
        XCTAssertTrue(warnings.contains(#"keys[5] (kid "rsa-1024"): skipped: RSA key is 1024 bits; at least 2048 are required"#), warnings)
        XCTAssertTrue(warnings.contains(#"keys[6] (kid "rsa-enc"): skipped: "use" is "enc", not "sig""#), warnings)
        XCTAssertTrue(warnings.contains(#"keys[7] (kid "ec-521"): skipped: EC curve "P-521" is not supported"#), warnings)
        XCTAssertTrue(warnings.contains(#"keys[8] (kid "rsa-oaep"): skipped: "alg" "RSA-OAEP" is not a supported signature algorithm"#), warnings)
        XCTAssertEqual(set.warnings.count, 4, warnings)
    }

    func testAValidTokenFailsOnceTheClockPassesItsExpiry() throws {
        let fixture = try TokenFixture.load()
        let verifier = try fixture.verifier()
        let token = try XCTUnwrap(fixture.cases.first { $0.name == "pyjwt RS256" }).token
        XCTAssertEqual(verifier.verify(token, now: 4_102_444_800 + 29).outcome, "ok")
        XCTAssertEqual(verifier.verify(token, now: 4_102_444_800 + 30).outcome, "token_expired")
    }

    func testRouteIssuerListRefusesTokensOfOtherIssuers() throws {
        let fixture = try TokenFixture.load()
        let verifier = try fixture.verifier()
        let local = try XCTUnwrap(fixture.cases.first { $0.name == "pyjwt HS256" }).token
        XCTAssertEqual(verifier.verify(local, now: fixture.now, allowedIssuers: ["idp"]).outcome, "issuer_not_allowed")
        XCTAssertEqual(verifier.verify(local, now: fixture.now, allowedIssuers: ["idp", "local"]).outcome, "ok")
        // An attack on an issuer the route does not accept stops at the gate, before any signature work.
        let tampered = try XCTUnwrap(fixture.cases.first { $0.name == "tampered payload" }).token
        XCTAssertEqual(verifier.verify(tampered, now: fixture.now, allowedIssuers: ["local"]).outcome, "issuer_not_allowed")
    }

    func testRolesClaimShapesOfRealIdentityProviders() throws {
        let fixture = try TokenFixture.load()
        let table: [(shape: String, rolesClaim: String, roles: [String], scopes: [String])] = [
            ("keycloak", "realm_access.roles", ["admin", "user"], ["a", "b"]),
            ("flask", "type", ["admin"], []),
            // A member literally named "realm_access.roles" wins over the nested path.
            ("dotted_name", "realm_access.roles", ["literal", "spaced", "roles"], ["read:docs", "write:docs"]),
        ]
        for row in table {
            let verifier = try fixture.verifier(rolesClaim: row.rolesClaim)
            let result = verifier.verify(fixture.shapes[row.shape]!, now: fixture.now)
            guard case .success(let token) = result else { XCTFail("\(row.shape): \(result.outcome)"); continue }
            XCTAssertEqual(token.roles, row.roles, row.shape)
            XCTAssertEqual(token.scopes, row.scopes, row.shape)
        }
    }
}
