import XCTest
@testable import GatehouseSessions

final class MemorySessionStoreTests: XCTestCase {
    private let idle: Int64 = 1800
    private let absolute: Int64 = 43200

    private func makeRecord(_ name: String, now: Int64) -> SessionRecord {
        SessionRecord(idHash: SessionID.hash(name), subject: name, roles: ["reader"], now: now, absoluteTimeout: absolute)
    }

    /// Runs a store call and returns what its completion got; fails if it did not run synchronously.
    private func sync<T>(_ call: (@escaping (Result<T, SessionStoreError>) -> Void) -> Void,
                         file: StaticString = #filePath, line: UInt = #line) -> T? {
        var outcome: Result<T, SessionStoreError>?
        call { outcome = $0 }
        guard let outcome else {
            XCTFail("completion was not called synchronously", file: file, line: line)
            return nil
        }
        return try? outcome.get()
    }

    private func lookup(_ store: MemorySessionStore, _ name: String) -> SessionRecord? {
        sync { store.lookup(idHash: SessionID.hash(name), completion: $0) } ?? nil
    }

    func testCreateLookupTouchRevoke() {
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let record = makeRecord("a", now: clock.now)
        XCTAssertNotNil(sync { store.create(record, completion: $0) })
        XCTAssertEqual(lookup(store, "a"), record)
        XCTAssertNil(lookup(store, "unknown"))

        clock.advance(600)
        _ = sync { store.touch(idHash: record.idHash, lastSeen: clock.now, completion: $0) }
        XCTAssertEqual(lookup(store, "a")?.lastSeen, clock.now)
        _ = sync { store.touch(idHash: record.idHash, lastSeen: clock.now - 100, completion: $0) }
        XCTAssertEqual(lookup(store, "a")?.lastSeen, clock.now, "touch never moves lastSeen back")

        _ = sync { store.revoke(idHash: record.idHash, until: record.absoluteExpiry, completion: $0) }
        let revoked = lookup(store, "a")
        XCTAssertEqual(revoked?.revoked, true)
        XCTAssertEqual(revoked?.state(now: clock.now, idleTimeout: idle), .revoked)
    }

    func testTombstoneReportsRevokedUntilTheAbsoluteExpiryThenIsForgotten() {
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let record = makeRecord("a", now: clock.now)
        _ = sync { store.create(record, completion: $0) }
        _ = sync { store.revoke(idHash: record.idHash, until: record.absoluteExpiry, completion: $0) }
        clock.advance(idle * 3)  // long past the idle timeout: still a tombstone, still revoked
        XCTAssertEqual(lookup(store, "a")?.state(now: clock.now, idleTimeout: idle), .revoked)
        _ = sync { store.touch(idHash: record.idHash, lastSeen: clock.now, completion: $0) }
        XCTAssertEqual(lookup(store, "a")?.state(now: clock.now, idleTimeout: idle), .revoked, "touch does not revive")
        clock.advance(absolute)
        XCTAssertNil(lookup(store, "a"), "forgotten at its until")
        XCTAssertEqual(store.count, 0)
    }

    func testIdleExpiredSessionIsNotRevivedByTouch() {
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let record = makeRecord("a", now: clock.now)
        _ = sync { store.create(record, completion: $0) }
        clock.advance(idle)
        _ = sync { store.touch(idHash: record.idHash, lastSeen: clock.now, completion: $0) }
        let found = lookup(store, "a")
        XCTAssertEqual(found?.lastSeen, record.lastSeen, "the touch left it as it was")
        XCTAssertEqual(found?.state(now: clock.now, idleTimeout: idle), .expired)
    }

    func testAnEndedSessionIsReportedExpiredOnEveryLookupUntilItsKeepingTimeEnds() {
        // SPEC §9: its cookie is session_expired each time, not session_unknown from the 2nd use.
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let record = makeRecord("a", now: clock.now)
        _ = sync { store.create(record, completion: $0) }
        clock.advance(idle)
        for _ in 0..<3 { XCTAssertEqual(lookup(store, "a")?.state(now: clock.now, idleTimeout: idle), .expired) }
        clock.set(record.forgetAt(idleTimeout: idle) - 1)
        XCTAssertEqual(lookup(store, "a")?.state(now: clock.now, idleTimeout: idle), .expired)
        clock.advance(1)
        XCTAssertNil(lookup(store, "a"))
        XCTAssertEqual(store.count, 0)
    }

    func testARecordIsKeptUntilItsAbsoluteExpiryOrOneIdleTimeoutAfterItEnded() {
        let table: [(name: String, lastSeen: Int64, absoluteExpiry: Int64, forgetAt: Int64)] = [
            ("idle end long before the absolute expiry", 1000, 50_000, 50_000),
            ("idle end close to the absolute expiry", 49_000, 50_000, 51_800),
            ("ended at the absolute expiry", 49_900, 50_000, 51_800),
            ("an absolute expiry at the end of time", 1000, .max, .max),
        ]
        for row in table {
            let record = SessionRecord(idHash: "h", subject: "a", roles: [], createdAt: 0, lastSeen: row.lastSeen,
                                       absoluteExpiry: row.absoluteExpiry)
            XCTAssertEqual(record.forgetAt(idleTimeout: idle), row.forgetAt, row.name)
        }
    }

    func testRevokingAnUnknownIdIsANoOp() {
        let store = MemorySessionStore(idleTimeout: idle, clock: ManualClock().function)
        XCTAssertNotNil(sync { store.revoke(idHash: "nope", until: .max, completion: $0) })
        XCTAssertEqual(store.count, 0)
    }

    func testAFullStoreSweepsExpiredRecordsFirst() {
        let clock = ManualClock()
        let store = MemorySessionStore(capacity: 10, idleTimeout: idle, clock: clock.function)
        for index in 0..<5 { _ = sync { store.create(makeRecord("old\(index)", now: clock.now), completion: $0) } }
        clock.advance(idle - 1)
        for index in 0..<5 { _ = sync { store.create(makeRecord("new\(index)", now: clock.now), completion: $0) } }
        clock.advance(1)  // the five old ones are now idle-expired
        _ = sync { store.create(makeRecord("latest", now: clock.now), completion: $0) }
        XCTAssertEqual(store.count, 6)
        for index in 0..<5 { XCTAssertNotNil(lookup(store, "new\(index)")) }
        XCTAssertNotNil(lookup(store, "latest"))
    }

    func testAStoreFullOfLiveSessionsEvictsTheLeastRecentlySeen() {
        let clock = ManualClock()
        let store = MemorySessionStore(capacity: 3, idleTimeout: idle, clock: clock.function)
        for name in ["a", "b", "c"] {
            _ = sync { store.create(makeRecord(name, now: clock.now), completion: $0) }
            clock.advance(10)
        }
        _ = sync { store.touch(idHash: SessionID.hash("a"), lastSeen: clock.now, completion: $0) }
        _ = sync { store.create(makeRecord("d", now: clock.now), completion: $0) }
        XCTAssertEqual(store.count, 3)
        XCTAssertNil(lookup(store, "b"), "b was seen least recently")
        for name in ["a", "c", "d"] { XCTAssertNotNil(lookup(store, name), name) }
    }

    func testTombstonesAreEvictedBeforeLiveSessions() {
        let clock = ManualClock()
        let store = MemorySessionStore(capacity: 2, idleTimeout: idle, clock: clock.function)
        _ = sync { store.create(makeRecord("old-live", now: clock.now), completion: $0) }
        clock.advance(10)
        _ = sync { store.create(makeRecord("revoked", now: clock.now), completion: $0) }
        _ = sync { store.revoke(idHash: SessionID.hash("revoked"), until: clock.now + absolute, completion: $0) }
        _ = sync { store.create(makeRecord("new", now: clock.now), completion: $0) }
        XCTAssertNil(lookup(store, "revoked"))
        XCTAssertNotNil(lookup(store, "old-live"))
    }

    func testSweepRemovesEveryRecordPastItsKeepingTime() {
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let start = clock.now
        for index in 0..<4 { _ = sync { store.create(makeRecord("\(index)", now: clock.now), completion: $0) } }
        _ = sync { store.revoke(idHash: SessionID.hash("0"), until: clock.now + 5, completion: $0) }
        clock.advance(idle - 1)
        _ = sync { store.touch(idHash: SessionID.hash("1"), lastSeen: clock.now, completion: $0) }
        clock.advance(1)
        XCTAssertEqual(store.sweep(), 1, "the tombstone past its until; the expired ones are still kept")
        XCTAssertEqual(store.count, 3)
        XCTAssertNotNil(lookup(store, "1"))
        clock.set(start + absolute)
        XCTAssertEqual(store.sweep(), 3)
        XCTAssertEqual(store.count, 0)
    }

    func testConcurrentUseFromManyThreadsKeepsEveryRecord() {
        let clock = ManualClock()
        let store = MemorySessionStore(idleTimeout: idle, clock: clock.function)
        let absolute = self.absolute
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<250 {
                let record = SessionRecord(idHash: SessionID.hash("\(thread)-\(index)"), subject: "s", roles: [],
                                           now: clock.now, absoluteTimeout: absolute)
                store.create(record) { _ in }
                store.touch(idHash: record.idHash, lastSeen: clock.now + 1) { _ in }
                store.lookup(idHash: record.idHash) { result in XCTAssertNotNil(try? result.get()) }
            }
        }
        XCTAssertEqual(store.count, 2000)
    }
}
