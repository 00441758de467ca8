import CLibevent
import Foundation
import GatehouseServer
import GatehouseSessions
import Glibc
import XCTest

/// Base of the Redis store tests: a real `redis-server` on a free port and hand-driven event
/// loops, both torn down after each test. Skips (with the reason) when `redis-server` is not
/// installed.
class RedisStoreTestCase: XCTestCase {
    var server: RedisServerProcess!
    var driver: EventLoopDriver!
    var stores: [RedisSessionStore] = []
    var logged: [String] = []
    let idle: Int64 = 60
    let absolute: Int64 = 3600

    /// Bases to make; a subclass test that needs two instances asks for 2.
    var baseCount: Int { 2 }
    /// `requirepass` of the server, if any.
    var serverPassword: String? { nil }

    override func setUpWithError() throws {
        try super.setUpWithError()
        do {
            server = try RedisServerProcess(password: serverPassword)
        } catch RedisServerProcess.Failure.notInstalled {
            throw XCTSkip("redis-server is not installed (apt-get install -y redis-server); skipping the Redis store tests")
        }
        try server.start()
        driver = EventLoopDriver(count: baseCount)
    }

    override func tearDown() {
        for store in stores { store.close() }
        stores = []
        driver?.shutdown()
        server?.stop()
        super.tearDown()
    }

    var now: Int64 { Int64(time(nil)) }

    /// A store on base `index`, closed in tearDown.
    func makeStore(base index: Int = 0, port: UInt16? = nil, db: Int = 0, password: String? = nil,
                   commandTimeoutMs: Int64 = 500) -> RedisSessionStore {
        let store = RedisSessionStore(base: driver.bases[index], host: "127.0.0.1", port: port ?? server.port, db: db,
                                      password: password, idleTimeout: idle, commandTimeoutMs: commandTimeoutMs)
        store.log = { [weak self] in self?.logged.append($0) }
        stores.append(store)
        return store
    }

    /// A fresh session record (a real 256-bit id, so its hash is what production keys look like).
    func makeRecord(subject: String = "alice", roles: [String] = ["reader"], absoluteTimeout: Int64? = nil)
        -> (id: SessionID, record: SessionRecord) {
        let id = SessionID.generate()
        return (id, SessionRecord(idHash: id.idHash, subject: subject, roles: roles, now: now,
                                  absoluteTimeout: absoluteTimeout ?? absolute))
    }

    /// Runs one store call and turns the loops until its completion (at most `timeout`).
    /// Fails the test when the completion never comes or comes twice.
    func wait<T>(timeout: TimeInterval = 5, file: StaticString = #filePath, line: UInt = #line,
                 _ call: (@escaping (Result<T, SessionStoreError>) -> Void) -> Void) -> Result<T, SessionStoreError>? {
        var outcome: Result<T, SessionStoreError>?
        var calls = 0
        call { result in
            calls += 1
            outcome = result
        }
        driver.run(until: { outcome != nil }, timeout: timeout)
        XCTAssertNotNil(outcome, "no completion within \(timeout) s", file: file, line: line)
        XCTAssertLessThanOrEqual(calls, 1, "completion ran more than once", file: file, line: line)
        return outcome
    }

    /// The value of a call that must succeed.
    func value<T>(file: StaticString = #filePath, line: UInt = #line,
                  _ call: (@escaping (Result<T, SessionStoreError>) -> Void) -> Void) -> T? {
        guard let outcome = wait(file: file, line: line, call) else { return nil }
        switch outcome {
        case .success(let value): return value
        case .failure(let error):
            XCTFail("store call failed: \(error)", file: file, line: line)
            return nil
        }
    }

    /// Retries `lookup` every 100 ms until it succeeds (the store reconnecting), at most `timeout`.
    func lookupUntilAvailable(_ store: RedisSessionStore, idHash: String, timeout: TimeInterval = 5)
        -> Result<SessionRecord?, SessionStoreError>? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Result<SessionRecord?, SessionStoreError>?
        while Date() < deadline {
            last = wait(timeout: 2) { store.lookup(idHash: idHash, completion: $0) }
            if case .success = last { return last }
            driver.run(for: 0.1)
        }
        return last
    }

    /// `TTL key` as redis-cli reports it.
    func ttl(_ key: String, db: Int = 0) -> Int64? {
        server.raw("TTL", key, db: db).first.flatMap { Int64($0) }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    /// The success value, nil on failure (without flattening an optional success value).
    var success: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
