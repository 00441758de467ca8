import CEvhttpHook
import Foundation
import XCTest

/// libevent's allocator (Sources/CEvhttpHook/allocator.c), driven directly: the process under
/// test keeps glibc's for libevent itself (only `gatehouse run` installs it).
final class EventAllocatorTests: XCTestCase {
    private func fill(_ p: UnsafeMutableRawPointer, _ count: Int, _ seed: UInt8) {
        for i in 0..<count { p.storeBytes(of: seed &+ UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
    }

    private func holds(_ p: UnsafeMutableRawPointer, _ count: Int, _ seed: UInt8) -> Bool {
        (0..<count).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == seed &+ UInt8(truncatingIfNeeded: $0) }
    }

    func testEverySizeIsUsableAlignedAndKeepsItsBytes() {
        var blocks: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        for size in [1, 15, 16, 17, 31, 32, 33, 100, 1000, 1024, 1025, 2047, 4096, 4097, 65_536, 1 << 20] {
            let p = gh_event_malloc(size)!
            XCTAssertEqual(Int(bitPattern: p) % 16, 0, "aligned as malloc's")
            let seed = UInt8(truncatingIfNeeded: size)
            fill(p, size, seed)
            blocks.append((p, size, seed))
        }
        for (p, size, seed) in blocks { XCTAssertTrue(holds(p, size, seed), "size \(size)") }
        for (p, _, _) in blocks { gh_event_free(p) }
    }

    func testAFreedBlockIsReusedForItsClassOnTheSameThread() {
        let a = gh_event_malloc(40)!
        let cached = gh_event_cached_blocks()
        gh_event_free(a)
        XCTAssertEqual(gh_event_cached_blocks(), cached + 1)
        let b = gh_event_malloc(48)!
        XCTAssertEqual(a, b, "40 and 48 bytes share the 48-byte class")
        XCTAssertEqual(gh_event_cached_blocks(), cached)
        gh_event_free(b)
        let large = gh_event_malloc(10_000)!
        let before = gh_event_cached_blocks()
        gh_event_free(large)
        XCTAssertEqual(gh_event_cached_blocks(), before, "blocks over the largest class go back to glibc")
    }

    /// Blocks made by glibc before the allocator was installed are freed like its own.
    func testAPlainGlibcBlockIsAcceptedEverywhere() {
        for size in [1, 24, 100, 300, 3000, 9000] {
            let p = malloc(size)!
            fill(p, size, 3)
            let grown = gh_event_realloc(p, size * 2)!
            XCTAssertTrue(holds(grown, size, 3))
            gh_event_free(grown)
            gh_event_free(malloc(size))
        }
    }

    func testReallocKeepsTheBytesAndGrowsInPlaceWithinTheClass() {
        let p = gh_event_malloc(20)!
        fill(p, 20, 7)
        let same = gh_event_realloc(p, 32)!
        XCTAssertEqual(same, p, "32 still fits the 32-byte class")
        let grown = gh_event_realloc(same, 5000)!
        XCTAssertTrue(holds(grown, 20, 7))
        fill(grown, 5000, 9)
        let bigger = gh_event_realloc(grown, 100_000)!
        XCTAssertTrue(holds(bigger, 5000, 9))
        gh_event_free(bigger)
        let fresh = gh_event_realloc(nil, 10)!
        gh_event_free(fresh)
        gh_event_free(nil)
    }

    func testWhatAThreadKeepsIsBounded() {
        let before = gh_event_cached_blocks()
        let blocks = (0..<20_000).map { _ in gh_event_malloc(30)! }
        for p in blocks { gh_event_free(p) }
        let kept = gh_event_cached_blocks() - before
        XCTAssertLessThanOrEqual(kept, 64 * 1024 / 32, "at most 64 KiB per class")
        XCTAssertGreaterThan(kept, 0)
        for _ in 0..<kept { _ = gh_event_malloc(30) } // take them back (leaked on purpose: test process)
    }

    /// Blocks allocated on one thread and freed on others (as a buffer handed between loops would
    /// be), many threads at once, each checking its bytes: no block is handed out twice.
    func testBlocksMayBeFreedOnAnyThread() {
        let shared = Handoff()
        let group = DispatchGroup()
        for t in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                EventAllocatorTests.churn(thread: t, shared: shared)
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        for address in shared.drain() { gh_event_free(UnsafeMutableRawPointer(bitPattern: address)) }
        XCTAssertEqual(shared.failures, 0)
    }

    private static func churn(thread t: Int, shared: Handoff) {
        func fill(_ p: UnsafeMutableRawPointer, _ count: Int, _ seed: UInt8) {
            for i in 0..<count { p.storeBytes(of: seed &+ UInt8(truncatingIfNeeded: i), toByteOffset: i, as: UInt8.self) }
        }
        func holds(_ p: UnsafeMutableRawPointer, _ count: Int, _ seed: UInt8) -> Bool {
            (0..<count).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == seed &+ UInt8(truncatingIfNeeded: $0) }
        }
        var mine: [(UnsafeMutableRawPointer, Int, UInt8)] = []
        for i in 0..<5_000 {
            let size = [24, 64, 200, 700, 1500, 3000, 9000][(i + t) % 7]
            let p = gh_event_malloc(size)!
            let seed = UInt8(truncatingIfNeeded: i &* 31 &+ t)
            fill(p, size, seed)
            if i % 3 == 0 {
                shared.put(Int(bitPattern: p))
            } else {
                mine.append((p, size, seed))
            }
            if i % 5 == 0, let (q, s, sd) = mine.popLast() {
                if !holds(q, s, sd) { shared.fail() }
                gh_event_free(q)
            }
            if let other = shared.take() { gh_event_free(UnsafeMutableRawPointer(bitPattern: other)) }
        }
        for (q, s, sd) in mine {
            if !holds(q, s, sd) { shared.fail() }
            gh_event_free(q)
        }
    }
}

/// Addresses of blocks passed between threads, and the failures they saw.
private final class Handoff: @unchecked Sendable {
    private let lock = NSLock()
    private var addresses: [Int] = []
    private var failed = 0
    func put(_ address: Int) { lock.lock(); addresses.append(address); lock.unlock() }
    func take() -> Int? { lock.lock(); defer { lock.unlock() }; return addresses.popLast() }
    func drain() -> [Int] { lock.lock(); defer { lock.unlock() }; let all = addresses; addresses = []; return all }
    func fail() { lock.lock(); failed += 1; lock.unlock() }
    var failures: Int { lock.lock(); defer { lock.unlock() }; return failed }
}
