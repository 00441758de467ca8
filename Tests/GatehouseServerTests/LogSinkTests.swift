import XCTest
import Glibc
@testable import GatehouseServer

/// The access-log sink's two buffers: every line arrives whole and in order across flushes,
/// reopens and concurrent appends, and the buffer a flush empties is the next one filled (its
/// pages stay mapped: no new allocation per flush).
final class LogSinkTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "logsink-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        XCTAssertEqual(mkdir(directory, 0o700), 0)
    }

    override func tearDown() {
        _ = try? FileManager.default.removeItem(atPath: directory)
    }

    private func lines(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    func testLinesArriveWholeAndInOrderAcrossFlushes() throws {
        let path = directory + "/access.log"
        let sink = try LogSink(path: path)
        var expected: [String] = []
        for batch in 0..<50 {
            for index in 0..<(batch * 7 % 200) {
                let line = "{\"batch\":\(batch),\"line\":\(index),\"pad\":\"\(String(repeating: "x", count: index % 90))\"}"
                expected.append(line)
                if index % 2 == 0 { sink.append(line + "\n") } else { sink.append(bytes: Array((line + "\n").utf8)) }
            }
            sink.flush()
        }
        sink.stop()
        XCTAssertEqual(try lines(path), expected)
    }

    func testTheEmptiedBufferIsFilledNext() throws {
        let sink = try LogSink(path: directory + "/access.log")
        let line = String(repeating: "y", count: 999) + "\n"
        for _ in 0..<100 { sink.append(line) }
        let filled = sink.capacities.pending
        XCTAssertGreaterThanOrEqual(filled, 100_000)
        sink.flush()
        // The filled buffer, emptied, waits as the spare; the new one is the old spare.
        XCTAssertEqual(sink.capacities.spare, filled)
        for _ in 0..<100 { sink.append(line) }
        sink.flush()
        for _ in 0..<100 { sink.append(line) }
        // From here on the two take turns: the one filled now is the one emptied before.
        XCTAssertEqual(sink.capacities.pending, filled)
        sink.flush()
        XCTAssertEqual(sink.capacities.spare, filled)
        sink.stop()
    }

    func testNoLineIsLostAcrossReopenOrConcurrentAppends() throws {
        let first = directory + "/access.log"
        let moved = directory + "/access.log.1"
        let sink = try LogSink(path: first)
        sink.startWriter()
        let threads = 4
        let perThread = 5_000
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                sink.append("t\(thread) \(index)\n")
                if thread == 0 && index == perThread / 2 {
                    // logrotate: move the file, then ask for a reopen (SIGUSR1).
                    XCTAssertEqual(rename(first, moved), 0)
                    sink.reopen()
                }
            }
        }
        sink.stop()
        let all = try lines(moved) + lines(first)
        XCTAssertEqual(all.count, threads * perThread)
        for thread in 0..<threads {
            let mine = all.filter { $0.hasPrefix("t\(thread) ") }
            XCTAssertEqual(mine, (0..<perThread).map { "t\(thread) \($0)" }, "thread \(thread)'s lines in order")
        }
    }
}
