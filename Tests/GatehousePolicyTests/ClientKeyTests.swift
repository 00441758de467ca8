import XCTest
@testable import GatehousePolicy

/// The per-client key of login admission and failure counts (SPEC §3.2 Login admission).
final class ClientKeyTests: XCTestCase {
    func testEveryWrittenFormOfOneClientIsOneKey() {
        let table: [(client: String, key: String)] = [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),              // dual-stack socket's IPv4 peer
            ("::FFFF:192.0.2.7", "192.0.2.7"),
            ("0:0:0:0:0:ffff:c000:207", "192.0.2.7"),
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:DB8:1:2:0:0:0:1", "2001:db8:1:2::/64"),
            ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),  // same /64: same client
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),                   // next /64: another
            ("fe80::1%eth0", "fe80::/64"),
            ("::1", "::/64"),
            ("::", "::/64"),
        ]
        for row in table {
            XCTAssertEqual(ClientKey.of(row.client), row.key, row.client)
        }
    }

    func testAHostRotatingThroughItsSlash64StaysOneClient() {
        let keys = Set((0..<1000).map { ClientKey.of("2001:db8:aa:bb:\(String($0, radix: 16)):1:2:3") })
        XCTAssertEqual(keys, ["2001:db8:aa:bb::/64"])
    }

    func testTextThatIsNoAddressIsKeptButBounded() {
        let table: [(client: String, key: String)] = [
            ("", ""),
            ("unknown", "unknown"),
            ("192.0.2.7:8080", "192.0.2.7:8080"),           // not an address: as written
            ("010.0.0.1", "010.0.0.1"),
            (String(repeating: "x", count: 10_000), String(repeating: "x", count: ClientKey.maxTextBytes)),
        ]
        for row in table {
            XCTAssertEqual(ClientKey.of(row.client), row.key, String(row.client.prefix(40)))
            XCTAssertLessThanOrEqual(ClientKey.of(row.client).utf8.count, ClientKey.maxTextBytes)
        }
        let multibyte = String(repeating: "é", count: 100)
        XCTAssertLessThanOrEqual(ClientKey.of(multibyte).utf8.count, ClientKey.maxTextBytes + 3)
    }
}
