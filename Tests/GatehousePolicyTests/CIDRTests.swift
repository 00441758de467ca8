import XCTest
import GatehousePolicy

/// Trusted-proxy networks (SPEC §2 `server.trusted_proxies`).
final class CIDRTests: XCTestCase {
    func testValidNetworksParseToTheirCanonicalText() {
        let cases: [(description: String, text: String, canonical: String)] = [
            ("IPv4 /8", "10.0.0.0/8", "10.0.0.0/8"),
            ("bare IPv4 is /32", "127.0.0.1", "127.0.0.1/32"),
            ("IPv4 /0", "0.0.0.0/0", "0.0.0.0/0"),
            ("IPv4 host bits cleared", "192.168.1.77/24", "192.168.1.0/24"),
            ("bare IPv6 is /128", "::1", "::1/128"),
            ("IPv6 /8", "fd00::/8", "fd00::/8"),
            ("IPv6 full form compressed", "2001:0db8:0000:0000:0000:0000:0000:0001/128", "2001:db8::1/128"),
            ("IPv6 upper case lowered", "2001:DB8::/32", "2001:db8::/32"),
            ("IPv6 longest zero run compressed", "2001:db8:0:0:1:0:0:0/128", "2001:db8:0:0:1::/128"),
            ("IPv6 first zero run on a tie", "2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1/128"),
            ("IPv6 single zero group not compressed", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1/128"),
            ("IPv6 unspecified", "::/0", "::/0"),
            ("IPv4-mapped", "::ffff:1.2.3.4", "::ffff:1.2.3.4/128"),
            ("IPv4-mapped in hex", "::ffff:0102:0304/120", "::ffff:1.2.3.0/120"),
            ("IPv6 trailing ::", "fe80::/10", "fe80::/10"),
        ]
        for testCase in cases {
            XCTAssertEqual(CIDR(testCase.text)?.description, testCase.canonical, testCase.description)
        }
    }

    func testInvalidNetworksAreRefused() {
        let cases: [(description: String, text: String)] = [
            ("empty", ""),
            ("IPv4 prefix too long", "10.0.0.0/33"),
            ("IPv6 prefix too long", "::/129"),
            ("negative prefix", "10.0.0.0/-1"),
            ("empty prefix", "10.0.0.0/"),
            ("prefix with leading zero", "10.0.0.0/08"),
            ("prefix with space", "10.0.0.0/ 8"),
            ("octet above 255", "256.0.0.1"),
            ("three octets", "10.0.0/8"),
            ("five octets", "1.2.3.4.5"),
            ("leading zero octet (octal?)", "010.0.0.1"),
            ("host name", "localhost"),
            ("two ::", "1::2::3"),
            ("nine groups", "1:2:3:4:5:6:7:8:9"),
            ("seven groups without ::", "1:2:3:4:5:6:7"),
            ("group of five digits", "12345::"),
            ("single leading colon", ":1::"),
            ("single trailing colon", "1::2:"),
            ("IPv4 tail not last", "::1.2.3.4:5"),
            ("brackets", "[::1]"),
            ("zone", "fe80::1%eth0/64"),
            ("surrounding space", " 10.0.0.0/8"),
        ]
        for testCase in cases {
            XCTAssertNil(CIDR(testCase.text), testCase.description)
        }
    }

    func testContainsAddressesOfEitherFamily() throws {
        let cases: [(description: String, network: String, address: String, expected: Bool)] = [
            ("inside IPv4 /8", "10.0.0.0/8", "10.255.1.2", true),
            ("outside IPv4 /8", "10.0.0.0/8", "11.0.0.1", false),
            ("IPv4 /32 itself", "127.0.0.1", "127.0.0.1", true),
            ("IPv4 /32 neighbour", "127.0.0.1", "127.0.0.2", false),
            ("IPv4 /0 everything v4", "0.0.0.0/0", "203.0.113.9", true),
            ("IPv4 network, IPv4-mapped address", "10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("IPv4 network, IPv4-mapped address outside", "10.0.0.0/8", "::ffff:11.1.2.3", false),
            ("IPv4 network, plain IPv6 address", "0.0.0.0/0", "::1", false),
            ("IPv6 loopback", "::1", "::1", true),
            ("IPv6 loopback is not IPv4 loopback", "::1", "127.0.0.1", false),
            ("IPv6 /8", "fd00::/8", "fd12:3456::1", true),
            ("IPv6 /8 outside", "fd00::/8", "fe80::1", false),
            ("IPv6 full form address", "2001:db8::/32", "2001:0DB8:0000:0000:0000:0000:0000:0001", true),
            ("bracketed IPv6 address", "::1", "[::1]", true),
            ("zone ignored", "fe80::/10", "fe80::1%eth0", true),
            ("IPv4-mapped network, plain IPv4 address", "::ffff:0:0/96", "192.0.2.1", true),
            ("not an address", "0.0.0.0/0", "unknown", false),
            ("address with port is not an address", "0.0.0.0/0", "1.2.3.4:80", false),
            ("empty address", "0.0.0.0/0", "", false),
        ]
        for testCase in cases {
            let network = try XCTUnwrap(CIDR(testCase.network), testCase.description)
            XCTAssertEqual(network.contains(testCase.address), testCase.expected, testCase.description)
        }
    }

    func testAddressesKeepTheirFamilyInTheirText() {
        XCTAssertEqual(IPAddress("10.0.0.1")?.description, "10.0.0.1")
        XCTAssertEqual(IPAddress("::FFFF:10.0.0.1")?.description, "::ffff:10.0.0.1")
        XCTAssertEqual(IPAddress("[2001:db8:0:0::1]")?.description, "2001:db8::1")
        XCTAssertEqual(IPAddress("::")?.description, "::")
        XCTAssertEqual(IPAddress("1:2:3:4:5:6:7:8")?.description, "1:2:3:4:5:6:7:8")
        XCTAssertEqual(IPAddress("1:2:3:4:5:6:1.2.3.4")?.description, "1:2:3:4:5:6:102:304")
        XCTAssertEqual(CIDR("10.0.0.0/8")?.prefixLength, 8)
        XCTAssertEqual(CIDR("fd00::/8")?.prefixLength, 8)
        XCTAssertNil(IPAddress("[1.2.3.4]"))
    }
}
