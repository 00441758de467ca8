import XCTest
@testable import GatehouseServer

/// The client headers that never reach an upstream as sent (SPEC §7.1, §3.2): every spelling
/// (any letter case, `_` for `-`), trusted and untrusted peers.
final class RequestHeaderFilterTests: XCTestCase {
    private let filter = RequestHeaderFilter(identityHeaderNames: ["X-Auth-Subject", "X-User-Email"])

    /// The spellings a client may try for `name`: as written, lowercase, uppercase, with `_`.
    private func spellings(_ name: String) -> [String] {
        let underscored = name.replacingOccurrences(of: "-", with: "_")
        return [name, name.lowercased(), name.uppercased(), underscored, underscored.lowercased(),
                String(name.enumerated().map { $0.offset % 2 == 0 ? Character($0.element.lowercased()) : Character($0.element.uppercased()) })]
    }

    private func removes(_ name: String, trusted: Bool) -> Bool {
        name.withCString { filter.removes($0, trustedPeer: trusted) }
    }

    func testURLAndMethodOverridesAndGatewaySetHeadersAreRemovedInEverySpellingFromEveryPeer() {
        let names = ["X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-HTTP-Method-Override", "X-HTTP-Method",
                     "X-Method-Override", "X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
                     "X-Request-Id", "Host", "Content-Length", "Expect", "Transfer-Encoding", "Proxy-Authorization",
                     "X-Auth-Subject", "X-User-Email", "X-Auth-Roles", "X-Auth-Anything-At-All"]
        for name in names {
            for spelling in spellings(name) {
                XCTAssertTrue(removes(spelling, trusted: false), "\(spelling) from an untrusted peer")
                XCTAssertTrue(removes(spelling, trusted: true), "\(spelling) from a trusted peer")
            }
        }
    }

    func testFrontProxyHeadersPassOnlyFromATrustedPeer() {
        for name in ["Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server"] {
            for spelling in spellings(name) {
                XCTAssertTrue(removes(spelling, trusted: false), "\(spelling) from an untrusted peer")
                XCTAssertFalse(removes(spelling, trusted: true), "\(spelling) from a trusted peer")
            }
        }
    }

    func testOtherHeadersPass() {
        let kept = ["Accept", "Cookie", "Authorization", "User-Agent", "X-Custom", "X-Auth", "X-Authentic",
                    "X-Original", "X-Original-URLs", "X-Real-IP-Not", "Forwarded-For", "X-Forwarded", "X-HTTP-Method-Overrid",
                    "X-Forwarded-Port2", "", "x", "X-Real\u{E9}IP", "X-Http-Method-Override-Extra-Long-Name-Beyond-The-Table"]
        for name in kept {
            XCTAssertFalse(removes(name, trusted: false), name)
            XCTAssertFalse(removes(name, trusted: true), name)
        }
    }

    func testTableOfNamesMatchesOnlyWholeNamesOfTheSameLength() {
        let table = FoldedNameTable(["x-a", "X_B", "longer-name", "", "x-a"])
        func has(_ name: String) -> Bool { name.withCString { table.contains($0, length: strlen($0)) } }
        XCTAssertTrue(has("x-a")); XCTAssertTrue(has("X_A")); XCTAssertTrue(has("x-b")); XCTAssertTrue(has("LONGER_NAME"))
        XCTAssertFalse(has("x-")); XCTAssertFalse(has("x-aa")); XCTAssertFalse(has("")); XCTAssertFalse(has("x-c"))
        XCTAssertFalse(has("a-very-much-longer-name-than-any"))
        XCTAssertFalse("x-a".withCString { FoldedNameTable([]).contains($0, length: 3) })
    }
}
