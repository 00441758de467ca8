import CEvhttpHook
import CLibevent
import Foundation
import XCTest

/// The interposed `evbuffer_read` (Sources/CEvhttpHook/socketread.c) reads without asking the
/// kernel first; what it returns and what it leaves in the buffer must be what libevent's own
/// `evbuffer_read` would give for the same socket, in every case its callers meet.
final class SocketReadTests: XCTestCase {
    private typealias ReadFunction = @convention(c) (OpaquePointer?, Int32, Int32) -> Int32

    /// libevent's own evbuffer_read (the next definition after the interposed one).
    private let libeventRead: ReadFunction = {
        let next = UnsafeMutableRawPointer(bitPattern: -1)  // RTLD_NEXT
        return unsafeBitCast(dlsym(next, "evbuffer_read")!, to: ReadFunction.self)
    }()

    /// A connected, non-blocking stream socket pair: (reader, writer).
    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    /// Runs `body` with a fresh socket pair (reader, writer) and an empty buffer, freed after.
    private func withSocketAndBuffer(_ body: (Int32, Int32, OpaquePointer) -> Void) {
        let (reader, writer) = socketPair()
        defer { Glibc.close(reader); Glibc.close(writer) }
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        body(reader, writer, buffer)
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            XCTAssertGreaterThan(n, 0)
            if n <= 0 { return }
            offset += n
        }
    }

    private func contents(_ buffer: OpaquePointer) -> [UInt8] {
        let count = evbuffer_get_length(buffer)
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBytes { evbuffer_copyout(buffer, $0.baseAddress, count) }
        return bytes
    }

    private func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
    }

    /// One scenario run with both functions on fresh sockets and buffers: the results of each
    /// call (value, and errno when -1) and the buffer's bytes at the end.
    private struct Outcome: Equatable {
        var results: [String] = []
        var bytes: [UInt8] = []
    }

    private func run(prefill: [UInt8], input: [UInt8], close closeWriter: Bool, reads: [Int32],
                     with read: (OpaquePointer, Int32, Int32) -> Int32) -> Outcome {
        let (reader, writer) = socketPair()
        defer { Glibc.close(reader); Glibc.close(writer) }
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        if !prefill.isEmpty { _ = prefill.withUnsafeBytes { evbuffer_add(buffer, $0.baseAddress, $0.count) } }
        send(writer, input)
        if closeWriter { shutdown(writer, Int32(SHUT_WR)) }
        var outcome = Outcome()
        for howmuch in reads {
            errno = 0
            let n = read(buffer, reader, howmuch)
            outcome.results.append(n < 0 ? "-1 errno \(errno)" : "\(n)")
        }
        outcome.bytes = contents(buffer)
        return outcome
    }

    /// Compares the two functions on one scenario; returns the interposed one's outcome.
    @discardableResult
    /// `sameBytes: false` where libevent's would read more in one call (above GH_READ_MAX).
    private func compare(prefill: [UInt8] = [], input: [UInt8], close: Bool = false, reads: [Int32],
                         sameBytes: Bool = true, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        let ours = run(prefill: prefill, input: input, close: close, reads: reads) { gh_evbuffer_read_direct($0, $1, $2) }
        let theirs = run(prefill: prefill, input: input, close: close, reads: reads) { libeventRead($0, $1, $2) }
        if sameBytes {
            XCTAssertTrue(ours.bytes == theirs.bytes, "bytes: \(ours.bytes.count) read, libevent \(theirs.bytes.count)", file: file, line: line)
        }
        XCTAssertTrue(ours.bytes == prefill + input.prefix(ours.bytes.count - prefill.count), "order", file: file, line: line)
        return ours
    }

    func testASmallRequestIsReadWholeInOneCall() {
        let request = Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let outcome = compare(input: request, reads: [-1, -1])
        XCTAssertEqual(outcome.results, ["\(request.count)", "-1 errno \(EAGAIN)"])
        XCTAssertEqual(outcome.bytes, request)
    }

    func testLargeInputIsReadInBoundedStepsAndArrivesWholeAndInOrder() {
        let input = pattern(100_000)
        let outcome = compare(input: input, reads: Array(repeating: -1, count: 60))
        XCTAssertTrue(outcome.bytes == input)
        let sizes = outcome.results.compactMap { Int($0) }
        XCTAssertTrue(sizes.allSatisfy { $0 <= 4096 }, "no read above libevent's 4096: \(sizes)")
        XCTAssertEqual(outcome.results.last, "-1 errno \(EAGAIN)")
    }

    func testHowmuchIsAnUpperBound() {
        let input = pattern(5_000)
        for limit: Int32 in [1, 10, 1_000, 4_031, 4_032, 4_033, 4_096, 20_000] {
            let outcome = compare(input: input, reads: [limit], sameBytes: limit <= 4_032)
            let n = Int(outcome.results[0]) ?? -1
            XCTAssertGreaterThan(n, 0)
            XCTAssertLessThanOrEqual(n, Int(limit), "limit \(limit)")
            XCTAssertTrue(outcome.bytes == Array(input.prefix(n)), "limit \(limit)")
        }
    }

    func testHowmuchZeroReadsNothingAndSaysSoAsLibeventDoes() {
        let ours = run(prefill: [], input: pattern(10), close: false, reads: [0]) { gh_evbuffer_read_direct($0, $1, $2) }
        let theirs = run(prefill: [], input: pattern(10), close: false, reads: [0]) { libeventRead($0, $1, $2) }
        XCTAssertEqual(ours, theirs)
        XCTAssertEqual(ours.results, ["0"])
    }

    func testEndOfStreamIsZeroAfterTheLastBytes() {
        let outcome = compare(input: pattern(300), close: true, reads: [-1, -1, -1])
        XCTAssertEqual(outcome.results, ["300", "0", "0"])
    }

    func testAnEmptySocketIsEAGAINAndAddsNothing() {
        let ours = run(prefill: [], input: [], close: false, reads: [-1]) { gh_evbuffer_read_direct($0, $1, $2) }
        let theirs = run(prefill: [], input: [], close: false, reads: [-1]) { libeventRead($0, $1, $2) }
        XCTAssertEqual(ours, theirs)
        XCTAssertEqual(ours.results, ["-1 errno \(EAGAIN)"])
    }

    func testAClosedDescriptorIsAnErrorWithErrno() {
        let buffer = evbuffer_new()!
        defer { evbuffer_free(buffer) }
        errno = 0
        XCTAssertEqual(gh_evbuffer_read_direct(buffer, -1, -1), -1)
        XCTAssertEqual(errno, EBADF)
        XCTAssertEqual(evbuffer_get_length(buffer), 0)
    }

    func testBytesAreAppendedAfterWhatTheBufferHeld() {
        // Prefills that leave the last chain nearly full, half full, and exactly full, so the
        // read spans the rest of one chain and a new one.
        for prefill in [1, 1_000, 1_023, 2_000, 4_000, 4_048, 9_000] {
            let outcome = compare(prefill: pattern(prefill, seed: 7), input: pattern(6_000), reads: [-1, -1, -1, -1])
            XCTAssertEqual(outcome.bytes.count, prefill + 6_000, "prefill \(prefill)")
        }
    }

    func testAFrozenEndIsRefusedAndNothingIsRead() {
        withSocketAndBuffer { reader, writer, buffer in
            send(writer, pattern(50))
            evbuffer_freeze(buffer, 0)
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, reader, -1), -1)
            evbuffer_unfreeze(buffer, 0)
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, reader, -1), 50, "the bytes are still in the socket")
        }
    }

    /// The buffer's callbacks (a bufferevent's watermarks hang on them) hear of every byte added,
    /// once per read, and of nothing when nothing was read.
    func testCallbacksHearOfTheBytesAddedOncePerRead() {
        final class Heard { var added: [Int] = [] }
        let heard = Heard()
        withSocketAndBuffer { reader, writer, buffer in
            evbuffer_add_cb(buffer, { _, info, arg in
                let heard = Unmanaged<Heard>.fromOpaque(arg!).takeUnretainedValue()
                if let info, info.pointee.n_added > 0 { heard.added.append(info.pointee.n_added) }
            }, Unmanaged.passUnretained(heard).toOpaque())
            send(writer, pattern(700))
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, reader, -1), 700)
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, reader, -1), -1)
            send(writer, pattern(5_000))
            var total = 0
            for _ in 0..<4 {
                let n = gh_evbuffer_read_direct(buffer, reader, -1)
                if n > 0 { total += Int(n) }
            }
            XCTAssertEqual(total, 5_000)
        }
        XCTAssertEqual(heard.added.first, 700)
        XCTAssertEqual(heard.added.reduce(0, +), 5_700)
    }

    /// The interposition is in place: a call of `evbuffer_read` by name reaches socketread.c
    /// (seen by the read size: libevent's sizes a small read to exactly what FIONREAD reports,
    /// this one reserves a whole block, which shows as spare room in the buffer's last chain).
    func testEvbufferReadByNameIsTheInterposedOne() {
        withSocketAndBuffer { reader, writer, buffer in
            send(writer, pattern(41))
            XCTAssertEqual(evbuffer_read(buffer, reader, -1), 41)
            var space = iovec()  // evbuffer_iovec is struct iovec on Linux
            XCTAssertEqual(evbuffer_reserve_space(buffer, 1, &space, 1), 1)
            XCTAssertGreaterThanOrEqual(space.iov_len, 3_000, "the block reserved for a read without FIONREAD")
        }
    }

    /// The read is recv(2) or recvmsg(2), socket calls; a descriptor that is not a socket (a
    /// pipe) is read with readv all the same, into one piece or two.
    func testAPipeIsReadLikeASocket() {
        for prefill in [0, 4_000] {
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&fds), 0)
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            defer { Glibc.close(fds[0]); Glibc.close(fds[1]) }
            let buffer = evbuffer_new()!
            defer { evbuffer_free(buffer) }
            let before = pattern(prefill, seed: 3)
            if prefill > 0 { _ = before.withUnsafeBytes { evbuffer_add(buffer, $0.baseAddress, $0.count) } }
            let input = pattern(1_000, seed: 5)
            send(fds[1], input)
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, fds[0], -1), 1_000)
            XCTAssertEqual(contents(buffer), before + input)
            errno = 0
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, fds[0], -1), -1)
            XCTAssertEqual(errno, EAGAIN)
            Glibc.close(fds[1])
            fds[1] = -1
            XCTAssertEqual(gh_evbuffer_read_direct(buffer, fds[0], -1), 0)
        }
    }
}
