import XCTest
import GatehousePolicy

/// SPEC §7.1: who the client is, and what `X-Forwarded-For` the upstream receives.
final class ForwardedForTests: XCTestCase {
    private let trusted = ["10.0.0.0/8", "127.0.0.1", "fd00::/8"].compactMap(CIDR.init)

    func testClientAddressWalksTheTrustedChainFromTheRight() {
        let cases: [(description: String, peer: String, incoming: String?, expected: String)] = [
            ("untrusted peer is the client, header ignored", "203.0.113.5", "1.1.1.1", "203.0.113.5"),
            ("untrusted peer without header", "203.0.113.5", nil, "203.0.113.5"),
            ("trusted peer without header", "10.0.0.1", nil, "10.0.0.1"),
            ("trusted peer, empty header", "10.0.0.1", "", "10.0.0.1"),
            ("trusted peer, only commas and spaces", "10.0.0.1", " , ,", "10.0.0.1"),
            ("one hop", "10.0.0.1", "198.51.100.7", "198.51.100.7"),
            ("right-most untrusted wins over a spoofed left entry", "10.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
            ("trusted proxies on the right are skipped", "10.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.1.1, 10.2.2.2", "198.51.100.7"),
            ("all trusted: the left-most", "10.0.0.1", "10.9.9.9, 127.0.0.1", "10.9.9.9"),
            ("spaces and empty entries ignored", "10.0.0.1", "  198.51.100.7 ,, 10.1.1.1 ,", "198.51.100.7"),
            ("tabs trimmed", "10.0.0.1", "\t198.51.100.7\t", "198.51.100.7"),
            ("an entry that is not an IP literal: the peer", "10.0.0.1", "198.51.100.7, unknown, 10.1.1.1", "10.0.0.1"),
            ("invalid entry left of the client is never reached", "10.0.0.1", "garbage, 198.51.100.7", "198.51.100.7"),
            ("IPv6 peer and entries", "fd00::1", "2001:db8::7, fd00::2", "2001:db8::7"),
            ("IPv4-mapped peer is trusted by an IPv4 CIDR", "::ffff:10.0.0.1", "198.51.100.7", "198.51.100.7"),
            ("IPv4-mapped entry is trusted by an IPv4 CIDR", "10.0.0.1", "198.51.100.7, ::ffff:10.3.3.3", "198.51.100.7"),
        ]
        for testCase in cases {
            XCTAssertEqual(ForwardedFor.clientAddress(peer: testCase.peer, incoming: testCase.incoming, trusted: trusted),
                           testCase.expected, testCase.description)
        }
    }

    /// SPEC §3.2: the client address is an IP literal, whatever a trusted proxy passed on.
    func testHostileEntriesNeverBecomeTheClientAddress() {
        let cases: [(description: String, incoming: String, expected: String)] = [
            ("a forged combined-log line", "6.6.6.6 - root [01/Jan/2026:00:00:00 +0000] \"GET /admin/delete-all HTTP/1.1\"",
             "10.0.0.1"),
            ("terminal escape sequence", "\u{1B}[2J198.51.100.7", "10.0.0.1"),
            ("newline inside", "198.51.100.7\nforged", "10.0.0.1"),
            ("quote and backslash", "1.2.3.4\"\\", "10.0.0.1"),
            ("a host name", "client.example.com", "10.0.0.1"),
            ("unknown (RFC 7239 obfuscation)", "unknown", "10.0.0.1"),
            ("IPv4 with a port", "198.51.100.7:4711", "10.0.0.1"),
            ("bracketed IPv6 with a port", "[2001:db8::7]:443", "10.0.0.1"),
            ("leading zeros", "010.0.0.1", "10.0.0.1"),
            ("out of range", "256.1.1.1", "10.0.0.1"),
            ("NUL", "198.51.100.7\u{0}", "10.0.0.1"),
            ("non-ASCII digits", "１９８.51.100.7", "10.0.0.1"),
            ("a 64 KiB entry", String(repeating: "9", count: 65_536), "10.0.0.1"),
            ("zone with log bytes: written without it", "fe80::1%\"x\ny", "fe80::1"),
            ("bracketed IPv6: written without brackets", "[2001:db8::7]", "2001:db8::7"),
            ("upper-case IPv6: written in its canonical form", "2001:DB8::7", "2001:db8::7"),
            ("a valid client left of garbage is never reached", "198.51.100.7, garbage", "10.0.0.1"),
        ]
        for testCase in cases {
            XCTAssertEqual(ForwardedFor.clientAddress(peer: "10.0.0.1", incoming: testCase.incoming, trusted: trusted),
                           testCase.expected, testCase.description)
        }
    }

    func testNothingIsTrustedWithoutTrustedProxies() {
        XCTAssertEqual(ForwardedFor.clientAddress(peer: "10.0.0.1", incoming: "1.1.1.1", trusted: []), "10.0.0.1")
        XCTAssertEqual(ForwardedFor.outgoing(peer: "10.0.0.1", incoming: "1.1.1.1", trusted: []), "10.0.0.1")
    }

    func testOutgoingAppendsToATrustedChainAndReplacesAnUntrustedOne() {
        let cases: [(description: String, peer: String, incoming: String?, expected: String)] = [
            ("trusted peer appends", "10.0.0.1", "198.51.100.7", "198.51.100.7, 10.0.0.1"),
            ("trusted peer appends to a longer chain", "10.0.0.1", "6.6.6.6, 198.51.100.7", "6.6.6.6, 198.51.100.7, 10.0.0.1"),
            ("trusted peer, no header", "10.0.0.1", nil, "10.0.0.1"),
            ("trusted peer, empty header", "10.0.0.1", "", "10.0.0.1"),
            ("trusted peer, blank header", "10.0.0.1", "  ", "10.0.0.1"),
            ("untrusted peer replaces the chain", "203.0.113.5", "1.1.1.1", "203.0.113.5"),
            ("untrusted peer, no header", "203.0.113.5", nil, "203.0.113.5"),
        ]
        for testCase in cases {
            XCTAssertEqual(ForwardedFor.outgoing(peer: testCase.peer, incoming: testCase.incoming, trusted: trusted),
                           testCase.expected, testCase.description)
        }
    }
}
