import Foundation
import GatehouseServer
import GatehouseSessions
import XCTest

/// The Redis store against a real redis-server: layout, TTLs and the memory store's semantics.
final class RedisSessionStoreTests: RedisStoreTestCase {
    func testCreatedSessionLooksUpTheSame() {
        let store = makeStore()
        let (_, record) = makeRecord(subject: "ä&b=c%\n", roles: ["reader", "", "admin ops"])
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        let found = value { store.lookup(idHash: record.idHash, completion: $0) }
        XCTAssertEqual(found, record)
        XCTAssertEqual(found??.state(now: now, idleTimeout: idle), .active)
    }

    func testUnknownSessionLooksUpAsNil() {
        let store = makeStore()
        let found = value { store.lookup(idHash: SessionID.generate().idHash, completion: $0) }
        XCTAssertEqual(found, .some(nil))
    }

    func testRedisHoldsOnlyTheHashOfTheSessionID() {
        let store = makeStore()
        let (id, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        let keys = server.raw("KEYS", "*").filter { !$0.isEmpty }
        XCTAssertEqual(keys, ["gatehouse:session:" + id.idHash])
        let stored = server.raw("HGETALL", store.key(for: record.idHash)).joined(separator: "\n")
        XCTAssertFalse(keys.joined().contains(id.value), "a key holds the raw session id")
        XCTAssertFalse(stored.contains(id.value), "a value holds the raw session id")
        XCTAssertTrue(stored.contains(id.idHash))
    }

    func testCreateKeepsTheKeyUntilTheRecordMayBeForgotten() {
        // SessionRecord.forgetAt: the absolute expiry, or one idle timeout after the session
        // ends, whichever is later (so that an ended session is still refused as expired).
        let store = makeStore()
        let (_, usual) = makeRecord()
        XCTAssertNotNil(value { store.create(usual, completion: $0) })
        let usualTTL = ttl(store.key(for: usual.idHash)) ?? -9
        XCTAssertGreaterThan(usualTTL, absolute - 5, "kept until the absolute expiry")
        XCTAssertLessThanOrEqual(usualTTL, absolute)

        let (_, short) = makeRecord(absoluteTimeout: 20)
        XCTAssertNotNil(value { store.create(short, completion: $0) })
        let shortTTL = ttl(store.key(for: short.idHash)) ?? -9
        XCTAssertGreaterThan(shortTTL, 20, "kept past an absolute expiry that comes first")
        XCTAssertLessThanOrEqual(shortTTL, 20 + idle, "for one idle timeout")
    }

    func testTouchMovesLastSeenAndExtendsTheExpiry() {
        let store = makeStore()
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        let later = record.lastSeen + 30
        XCTAssertNotNil(value { store.touch(idHash: record.idHash, lastSeen: later, completion: $0) })
        XCTAssertEqual(value { store.lookup(idHash: record.idHash, completion: $0) }??.lastSeen, later)
        let kept = ttl(store.key(for: record.idHash)) ?? -9
        XCTAssertGreaterThanOrEqual(kept, later + 2 * idle - now - 1, "past the new end plus an idle timeout")
        XCTAssertLessThanOrEqual(kept, absolute)
    }

    func testTouchNeverMovesLastSeenBackNorPastTheAbsoluteExpiry() {
        let store = makeStore()
        let (_, record) = makeRecord(absoluteTimeout: 40)
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertNotNil(value { store.touch(idHash: record.idHash, lastSeen: record.lastSeen + 10, completion: $0) })
        XCTAssertNotNil(value { store.touch(idHash: record.idHash, lastSeen: record.lastSeen + 5, completion: $0) })
        XCTAssertEqual(value { store.lookup(idHash: record.idHash, completion: $0) }??.lastSeen, record.lastSeen + 10)
        XCTAssertLessThanOrEqual(ttl(store.key(for: record.idHash)) ?? 999, 40 + idle, "the end stays at the absolute expiry")
    }

    func testTouchOfAnUnknownSessionCreatesNothing() {
        let store = makeStore()
        XCTAssertNotNil(value { store.touch(idHash: SessionID.generate().idHash, lastSeen: now, completion: $0) })
        XCTAssertEqual(server.raw("DBSIZE").first, "0")
    }

    func testRevokeKeepsATombstoneUntilItsEnd() {
        let store = makeStore()
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertNotNil(value { store.revoke(idHash: record.idHash, until: record.absoluteExpiry, completion: $0) })
        let found = value { store.lookup(idHash: record.idHash, completion: $0) } ?? nil
        XCTAssertEqual(found?.revoked, true)
        XCTAssertEqual(found?.state(now: now, idleTimeout: idle), .revoked)
        let tombstoneTTL = ttl(store.key(for: record.idHash)) ?? -9
        XCTAssertGreaterThan(tombstoneTTL, idle, "kept past the idle timeout")
        XCTAssertLessThanOrEqual(tombstoneTTL, absolute)
    }

    func testTouchAfterRevokeDoesNotUnrevoke() {
        let store = makeStore()
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertNotNil(value { store.revoke(idHash: record.idHash, until: record.absoluteExpiry, completion: $0) })
        let ttlBefore = ttl(store.key(for: record.idHash)) ?? -9
        XCTAssertNotNil(value { store.touch(idHash: record.idHash, lastSeen: record.lastSeen + 20, completion: $0) })
        let found = value { store.lookup(idHash: record.idHash, completion: $0) } ?? nil
        XCTAssertEqual(found?.revoked, true)
        XCTAssertEqual(found?.lastSeen, record.lastSeen, "a revoked session is not touched")
        XCTAssertEqual(server.raw("HGET", store.key(for: record.idHash), "v").first, "1")
        XCTAssertLessThanOrEqual(abs((ttl(store.key(for: record.idHash)) ?? -99) - ttlBefore), 1, "tombstone expiry unchanged")
    }

    func testRevokeOfAnUnknownSessionCreatesNothing() {
        let store = makeStore()
        XCTAssertNotNil(value { store.revoke(idHash: SessionID.generate().idHash, until: now + 100, completion: $0) })
        XCTAssertEqual(server.raw("DBSIZE").first, "0")
    }

    func testRevokeIsSeenAtOnceByAnotherInstance() {
        let first = makeStore(base: 0)
        let second = makeStore(base: 1)
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { first.create(record, completion: $0) })
        let seen = value { second.lookup(idHash: record.idHash, completion: $0) } ?? nil
        XCTAssertEqual(seen?.state(now: now, idleTimeout: idle), .active)
        XCTAssertNotNil(value { first.revoke(idHash: record.idHash, until: record.absoluteExpiry, completion: $0) })
        let after = value { second.lookup(idHash: record.idHash, completion: $0) } ?? nil
        XCTAssertEqual(after?.state(now: now, idleTimeout: idle), .revoked)
        XCTAssertNotNil(value { second.touch(idHash: record.idHash, lastSeen: now + 5, completion: $0) })
        XCTAssertEqual((value { first.lookup(idHash: record.idHash, completion: $0) } ?? nil)?.revoked, true)
    }

    func testUnreadableRecordIsReportedCorrupt() {
        let store = makeStore()
        let idHash = SessionID.generate().idHash
        _ = server.raw("HSET", store.key(for: idHash), "r", "not a record", "s", "1", "v", "0")
        let outcome = wait { store.lookup(idHash: idHash, completion: $0) }
        XCTAssertEqual(outcome?.failure, .corruptRecord())
        XCTAssertEqual(wait { store.touch(idHash: idHash, lastSeen: now, completion: $0) }?.failure, .corruptRecord())
    }

    func testUsesTheConfiguredDatabase() {
        let store = makeStore(db: 3)
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertEqual(server.raw("EXISTS", store.key(for: record.idHash), db: 3).first, "1")
        XCTAssertEqual(server.raw("EXISTS", store.key(for: record.idHash), db: 0).first, "0")
    }
}
