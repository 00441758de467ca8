import CLibevent
import Glibc
import XCTest
import GatehouseConfig
@testable import GatehouseServer

/// SPEC §3.2: an idle upstream connection with bytes (or a close) pending is never reused, even
/// before its read event had a turn to notice them.
final class UpstreamPoolTests: XCTestCase {
    private var listener: Int32 = -1
    private var port: UInt16 = 0

    override func setUp() {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                XCTAssertEqual(bind(listener, sa, length), 0)
                XCTAssertEqual(listen(listener, 8), 0)
                XCTAssertEqual(getsockname(listener, sa, &length), 0)
            }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    override func tearDown() { Glibc.close(listener) }

    /// A pool with one idle connection whose upstream end is returned.
    private func poolWithIdleConnection(_ driver: EventLoopDriver) -> (TargetPool, Int32) {
        let target = ResolvedTarget(target: UpstreamTarget(host: "127.0.0.1", port: port), address: "127.0.0.1")
        let pool = TargetPool(target: target, base: driver.base, maxIdle: 4, timeoutMs: 1000)
        guard let (connection, reused) = pool.acquire({ _ in }) else { XCTFail("no connection"); return (pool, -1) }
        XCTAssertFalse(reused)
        let upstream = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(upstream, 0)
        pool.release(connection)
        return (pool, upstream)
    }

    /// Runs `body` with a pool holding one idle connection and that connection's upstream end;
    /// the pool is gone before its event base.
    private func withIdleConnection(_ body: (TargetPool, Int32) -> Void) {
        let driver = EventLoopDriver()
        do {
            let (pool, upstream) = poolWithIdleConnection(driver)
            body(pool, upstream)
            Glibc.close(upstream)
        }
        driver.shutdown()
    }

    func testQuietIdleConnectionIsReused() {
        withIdleConnection { pool, _ in
            let first = pool.takeIdle()
            XCTAssertNotNil(first)
            if let first { pool.release(first) }
            XCTAssertTrue(first === pool.takeIdle(), "the same connection, twice")
            if let first { first.close() }
        }
    }

    func testIdleConnectionWithPendingBytesIsClosedNotReused() {
        withIdleConnection { pool, upstream in
            let late = Array("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected".utf8)
            XCTAssertEqual(write(upstream, late, late.count), late.count)
            // No loop turn in between: only the peek can see them.
            XCTAssertNil(pool.takeIdle())
        }
    }

    func testIdleConnectionClosedByItsUpstreamIsNotReused() {
        withIdleConnection { pool, upstream in
            shutdown(upstream, Int32(SHUT_WR))
            usleep(20_000)   // the FIN crosses loopback
            XCTAssertNil(pool.takeIdle())
        }
    }
}
