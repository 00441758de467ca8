import XCTest
@testable import GatehouseAuth

final class JWSAlgorithmTests: XCTestCase {
    func testConfigNamesOfSupportedAlgorithmsParse() throws {
        for algorithm in JWSAlgorithm.allCases {
            XCTAssertEqual(try JWSAlgorithm(configName: algorithm.rawValue), algorithm)
        }
    }

    func testNoneIsRefusedInAnyLetterCase() {
        for name in ["none", "None", "NONE", "nOnE", "NoNe"] {
            XCTAssertThrowsError(try JWSAlgorithm(configName: name), name) { error in
                XCTAssertTrue("\(error)".contains("is never accepted"), "\(error)")
            }
            XCTAssertNil(JWSAlgorithm(rawValue: name), name)
        }
    }

    func testUnknownNamesListTheValidOnes() {
        let table: [(name: String, says: String)] = [
            ("ES512", #"unknown algorithm "ES512"; valid: HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, Ed25519"#),
            ("hs256", "did you mean HS256?"),
            ("eddsa", "did you mean EdDSA?"),
            ("", #"unknown algorithm """#),
        ]
        for row in table {
            XCTAssertThrowsError(try JWSAlgorithm(configName: row.name), row.name) { error in
                XCTAssertTrue("\(error)".contains(row.says), "\(row.name): \(error)")
            }
        }
    }

    func testHeaderNamesAreCaseSensitive() {
        XCTAssertNil(JWSAlgorithm(rawValue: "hs256"))
        XCTAssertNil(JWSAlgorithm(rawValue: "ed25519"))
        XCTAssertEqual(JWSAlgorithm(rawValue: "Ed25519"), .ed25519)
    }

    func testEitherEdDSANameInAnAllowListAdmitsBoth() {
        let keys = JWKSet(keys: [])
        for listed in [JWSAlgorithm.eddsa, .ed25519] {
            let issuer = JWTIssuerConfig(name: "i", issuer: nil, audiences: nil, algorithms: [listed], keys: keys)
            XCTAssertEqual(issuer.algorithms, [.eddsa, .ed25519], "\(listed)")
        }
        let other = JWTIssuerConfig(name: "i", issuer: nil, audiences: nil, algorithms: [.rs256], keys: keys)
        XCTAssertEqual(other.algorithms, [.rs256])
    }
}
