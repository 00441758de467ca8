import XCTest
@testable import GatehouseSessions

final class SessionRecordTests: XCTestCase {
    private let idle: Int64 = 1800
    private let t0: Int64 = 1_800_000_000

    private func record(lastSeen: Int64? = nil, revoked: Bool = false) -> SessionRecord {
        SessionRecord(idHash: "h", subject: "alice", roles: ["admin"], createdAt: t0, lastSeen: lastSeen ?? t0,
                      absoluteExpiry: t0 + 43200, revoked: revoked)
    }

    func testStateFollowsTheClockAsTheTableSays() {
        let table: [(description: String, record: SessionRecord, now: Int64, expect: SessionState)] = [
            ("fresh", record(), t0, .active),
            ("one second before the idle timeout", record(), t0 + idle - 1, .active),
            ("at the idle timeout", record(), t0 + idle, .expired),
            ("kept alive: idle counts from lastSeen", record(lastSeen: t0 + 40000), t0 + 40000 + idle - 1, .active),
            ("one second before the absolute expiry, recently seen", record(lastSeen: t0 + 43000), t0 + 43199, .active),
            ("at the absolute expiry even when just seen", record(lastSeen: t0 + 43199), t0 + 43200, .expired),
            ("revoked", record(revoked: true), t0 + 1, .revoked),
            ("revoked wins over idle", record(revoked: true), t0 + idle + 5, .revoked),
            ("after the absolute expiry a revoked session is just expired", record(revoked: true), t0 + 43200, .expired),
        ]
        for row in table {
            XCTAssertEqual(row.record.state(now: row.now, idleTimeout: idle), row.expect, row.description)
        }
    }

    func testStateMovesActiveToExpiredWithAnInjectedClock() {
        let clock = ManualClock(t0)
        var session = record()
        XCTAssertEqual(session.state(now: clock.now, idleTimeout: idle), .active)
        clock.advance(idle - 10)
        session.lastSeen = clock.now  // a request refreshes the idle timer
        clock.advance(idle - 1)
        XCTAssertEqual(session.state(now: clock.now, idleTimeout: idle), .active)
        clock.advance(1)
        XCTAssertEqual(session.state(now: clock.now, idleTimeout: idle), .expired)
    }

    func testExpiryIsTheEarlierOfIdleAndAbsolute() {
        XCTAssertEqual(record().expiry(idleTimeout: idle), t0 + idle)
        XCTAssertEqual(record(lastSeen: t0 + 43000).expiry(idleTimeout: idle), t0 + 43200)
        XCTAssertEqual(record().expiry(idleTimeout: .max), t0 + 43200, "no overflow")
    }

    func testLoginInitializerStartsTheClocks() {
        let made = SessionRecord(idHash: "h", subject: "bob", roles: [], now: 100, absoluteTimeout: 50)
        XCTAssertEqual([made.createdAt, made.lastSeen, made.absoluteExpiry], [100, 100, 150])
        XCTAssertFalse(made.revoked)
    }

    func testEncodingRoundTripsHostileText() {
        let subjects = ["alice", "", "a&sub=mallory", "x=1&rv=0", "100%", "%41", "line\nbreak\r\n", "nul\u{0}byte",
                        "ünïcødé 🔐", "+plus+ space", "semi;colon,comma", "\u{FEFF}bom", String(repeating: "z", count: 2000)]
        let roleLists: [[String]] = [[], [""], ["admin"], ["a,b", "c&role=admin", "=", "%zz"], ["", "", "x"]]
        for subject in subjects {
            for roles in roleLists {
                let original = SessionRecord(idHash: SessionID.hash(subject), subject: subject, roles: roles,
                                             createdAt: -5, lastSeen: 0, absoluteExpiry: .max, revoked: subject.count % 2 == 0)
                let text = original.encoded
                XCTAssertFalse(text.contains("\n") || text.contains("\r") || text.contains("\u{0}"), text)
                XCTAssertTrue(text.utf8.allSatisfy { $0 < 0x80 }, text)
                XCTAssertEqual(SessionRecord(encoded: text), original, text)
            }
        }
    }

    func testEncodingHasTheDocumentedShape() {
        let made = SessionRecord(idHash: "ab12", subject: "a b&c", roles: ["admin", "r/w"], createdAt: 1, lastSeen: 2,
                                 absoluteExpiry: 3, revoked: true)
        XCTAssertEqual(made.encoded, "v=1&id=ab12&sub=a%20b%26c&c=1&s=2&x=3&rv=1&role=admin&role=r%2Fw")
    }

    func testDecodingRefusesAnythingElse() {
        let good = "v=1&id=ab12&sub=alice&c=1&s=2&x=3&rv=0"
        XCTAssertNotNil(SessionRecord(encoded: good))
        XCTAssertNotNil(SessionRecord(encoded: good + "&future=field"), "unknown fields are skipped")
        XCTAssertNotNil(SessionRecord(encoded: "rv=0&x=3&s=2&c=1&sub=alice&id=ab12&v=1"), "order does not matter")
        let bad: [(String, String)] = [
            ("empty", ""), ("another version", good.replacingOccurrences(of: "v=1", with: "v=2")),
            ("missing id", good.replacingOccurrences(of: "id=ab12&", with: "")),
            ("empty id", good.replacingOccurrences(of: "id=ab12", with: "id=")),
            ("missing subject", good.replacingOccurrences(of: "sub=alice&", with: "")),
            ("repeated subject", good + "&sub=mallory"),
            ("repeated revoked", good + "&rv=1"),
            ("bad escape", good.replacingOccurrences(of: "alice", with: "al%zzice")),
            ("truncated escape", good.replacingOccurrences(of: "alice", with: "alice%4")),
            ("invalid UTF-8", good.replacingOccurrences(of: "alice", with: "%FF%FE")),
            ("non-decimal number", good.replacingOccurrences(of: "c=1", with: "c=0x1")),
            ("plus sign", good.replacingOccurrences(of: "c=1", with: "c=+1")),
            ("number too large", good.replacingOccurrences(of: "c=1", with: "c=99999999999999999999")),
            ("revoked not 0 or 1", good.replacingOccurrences(of: "rv=0", with: "rv=true")),
            ("field without =", good + "&role"),
            ("JSON", #"{"sub":"alice"}"#),
        ]
        for (description, text) in bad {
            XCTAssertNil(SessionRecord(encoded: text), description)
        }
    }
}
