import Foundation
import GatehouseServer
import GatehouseSessions
import XCTest

/// The Redis store when Redis goes away, hangs, comes back or wants a password.
final class RedisSessionStoreFailureTests: RedisStoreTestCase {
    override var baseCount: Int { 1 }

    private func isDownError(_ error: SessionStoreError?) -> Bool {
        error == .unavailable() || error == .timeout()
    }

    func testOperationsFailFastWhileRedisIsDown() {
        let store = makeStore()
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        server.stop()
        for attempt in 0..<5 {
            let started = Date()
            let outcome = wait(timeout: 3) { store.lookup(idHash: record.idHash, completion: $0) }
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertTrue(isDownError(outcome?.failure), "attempt \(attempt): \(String(describing: outcome))")
            XCTAssertLessThan(elapsed, 1.0, "attempt \(attempt) took \(elapsed) s")
            driver.run(for: 0.05)
        }
        XCTAssertFalse(store.isConnected)
        XCTAssertTrue(logged.contains { $0.contains("lost the connection") }, "\(logged)")
    }

    func testReconnectsByItselfWhenRedisComesBack() throws {
        let store = makeStore()
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        server.stop()
        XCTAssertTrue(isDownError(wait { store.lookup(idHash: record.idHash, completion: $0) }?.failure))
        driver.run(for: 1.5)    // let the backoff grow while Redis is away
        try server.start()      // same port, empty data set
        let outcome = lookupUntilAvailable(store, idHash: record.idHash)
        XCTAssertEqual(outcome?.success, .some(nil), "Redis restarted without data")
        XCTAssertTrue(driver.run(until: { store.isConnected }, timeout: 3))
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertEqual(value { store.lookup(idHash: record.idHash, completion: $0) }, record)
        XCTAssertTrue(logged.contains { $0.contains("connected") }, "\(logged)")
    }

    func testStartsWhileRedisIsDownAndConnectsLater() throws {
        server.stop()
        let store = makeStore()
        let (_, record) = makeRecord()
        let started = Date()
        XCTAssertEqual(wait { store.create(record, completion: $0) }?.failure, .unavailable())
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        try server.start()
        XCTAssertEqual(lookupUntilAvailable(store, idHash: record.idHash)?.success, .some(nil))
        XCTAssertNotNil(value { store.create(record, completion: $0) })
    }

    func testHungRedisTimesOutAndTheLateReplyIsIgnored() {
        let store = makeStore(commandTimeoutMs: 200)
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        server.pause()
        let started = Date()
        var outcomes: [Result<SessionRecord?, SessionStoreError>] = []
        store.lookup(idHash: record.idHash) { outcomes.append($0) }
        driver.run(until: { !outcomes.isEmpty }, timeout: 3)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(outcomes.first?.failure, .timeout(), "\(outcomes)")
        XCTAssertGreaterThanOrEqual(elapsed, 0.15)
        XCTAssertLessThan(elapsed, 1.0)
        server.resume()
        driver.run(for: 0.3)    // the late reply arrives on the same connection and must be dropped
        XCTAssertEqual(outcomes.count, 1, "a late reply completed a timed-out command again")
        XCTAssertTrue(store.isConnected, "one timeout does not drop the connection")
        XCTAssertEqual(value { store.lookup(idHash: record.idHash, completion: $0) }, record)
    }

    func testHungRedisIsDroppedAfterThreeTimeoutsAndComesBack() {
        let store = makeStore(commandTimeoutMs: 200)
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        server.pause()
        let started = Date()
        var outcomes: [Result<SessionRecord?, SessionStoreError>] = []
        for _ in 0..<4 { store.lookup(idHash: record.idHash) { outcomes.append($0) } }
        driver.run(until: { outcomes.count >= 4 }, timeout: 3)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertEqual(outcomes.count, 4)
        // The first ones time out; after three in a row the hung connection is dropped, which
        // fails whatever is still pending as unavailable.
        XCTAssertEqual(outcomes.first?.failure, .timeout(), "\(outcomes)")
        XCTAssertTrue(outcomes.allSatisfy { isDownError($0.failure) }, "\(outcomes)")
        XCTAssertTrue(logged.contains { $0.contains("stopped answering") }, "\(logged)")
        driver.run(for: 0.5)    // reconnects to the frozen server (the kernel accepts), PING times out again
        server.resume()
        XCTAssertEqual(lookupUntilAvailable(store, idHash: record.idHash)?.success, record)
        XCTAssertEqual(outcomes.count, 4)
    }

    func testRedisKilledWithCommandsInFlightCompletesEachOnce() {
        let store = makeStore(commandTimeoutMs: 2_000)
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        server.pause()
        var outcomes: [Result<SessionRecord?, SessionStoreError>] = []
        for _ in 0..<3 { store.lookup(idHash: record.idHash) { outcomes.append($0) } }
        driver.run(for: 0.1)
        let started = Date()
        server.stop()           // SIGCONT + SIGTERM: the connection closes under the pending commands
        driver.run(until: { outcomes.count >= 3 }, timeout: 3)
        XCTAssertEqual(outcomes.count, 3)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
        XCTAssertTrue(outcomes.allSatisfy { self.isDownError($0.failure) || $0.success == record }, "\(outcomes)")
        driver.run(for: 0.3)
        XCTAssertEqual(outcomes.count, 3)
    }

    func testReleasingTheStoreCompletesWhatIsInFlight() {
        var store: RedisSessionStore? = RedisSessionStore(base: driver.base, host: "127.0.0.1", port: server.port, db: 0,
                                                          password: nil, idleTimeout: idle)
        XCTAssertTrue(driver.run(until: { store?.isConnected == true }))
        var outcomes: [Result<SessionRecord?, SessionStoreError>] = []
        for _ in 0..<3 { store?.lookup(idHash: SessionID.generate().idHash) { outcomes.append($0) } }
        store = nil
        XCTAssertEqual(outcomes.count, 3, "deinit completes the commands in flight")
        XCTAssertTrue(outcomes.allSatisfy { $0.failure == .unavailable() }, "\(outcomes)")
        driver.run(for: 0.3)
        XCTAssertEqual(outcomes.count, 3)
    }

    func testReleasingTheStoreFromACompletionWhileTheConnectionDiesIsSafe() {
        var store: RedisSessionStore? = RedisSessionStore(base: driver.base, host: "127.0.0.1", port: server.port, db: 0,
                                                          password: nil, idleTimeout: idle, commandTimeoutMs: 3_000)
        XCTAssertTrue(driver.run(until: { store?.isConnected == true }))
        server.pause()
        var outcomes: [Result<SessionRecord?, SessionStoreError>] = []
        for _ in 0..<3 {
            store?.lookup(idHash: SessionID.generate().idHash) { result in
                outcomes.append(result)
                store = nil     // the last reference goes inside hiredis's teardown of the context
            }
        }
        driver.run(for: 0.1)
        server.killHard()         // no reply ever comes: hiredis fails the three with NULL replies
        driver.run(until: { outcomes.count >= 3 }, timeout: 3)
        XCTAssertEqual(outcomes.count, 3)
        XCTAssertTrue(outcomes.allSatisfy { $0.failure == .unavailable() }, "\(outcomes)")
        XCTAssertNil(store)
        driver.run(for: 0.3)    // no reconnect timer or hiredis callback may fire into the freed store
        XCTAssertEqual(outcomes.count, 3)
    }

    func testClosedStoreFailsAtOnce() {
        let store = makeStore()
        XCTAssertTrue(driver.run(until: { store.isConnected }))
        store.close()
        var outcome: Result<SessionRecord?, SessionStoreError>?
        store.lookup(idHash: SessionID.generate().idHash) { outcome = $0 }
        XCTAssertEqual(outcome?.failure, .unavailable(), "fails before returning")
    }
}

/// The store against a server with `requirepass`.
final class RedisSessionStoreAuthTests: RedisStoreTestCase {
    override var baseCount: Int { 1 }
    override var serverPassword: String? { "s3cret pass" }

    func testAuthenticatesWithRequirepass() {
        let store = makeStore(password: "s3cret pass")
        let (_, record) = makeRecord()
        XCTAssertNotNil(value { store.create(record, completion: $0) })
        XCTAssertEqual(value { store.lookup(idHash: record.idHash, completion: $0) }, record)
        XCTAssertTrue(store.isConnected)
    }

    func testWithoutTheRightPasswordTheStoreIsUnavailable() {
        for password in [nil, "wrong"] {
            let store = makeStore(password: password)
            let (_, record) = makeRecord()
            let outcome = wait { store.create(record, completion: $0) }
            XCTAssertEqual(outcome?.failure, .unavailable(), "password \(password ?? "none")")
            XCTAssertFalse(store.isConnected)
        }
        XCTAssertEqual(server.raw("DBSIZE").first, "0")
        XCTAssertFalse(logged.joined().contains("wrong"), "the password reached the log")
    }
}
