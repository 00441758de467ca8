import Glibc
import CLibevent
import Synchronization
import GatehouseCore

/// Where access-log lines go: `stdout` or a file. Event loops only append to an in-memory
/// buffer (one uncontended lock, no system call); a writer thread moves the buffer to the
/// file every 50 ms, so a slow disk never stalls a loop. `reopen()` (SIGUSR1, logrotate) and
/// `flush()` (shutdown) are safe from any thread; no line is lost on either.
final class LogSink: Sendable {
    private struct State {
        var pending: [UInt8] = []
        /// The buffer the writer emptied last, kept with its capacity to become `pending` at
        /// the next flush: the two take turns, so their pages stay mapped. A fresh buffer
        /// every 50 ms was an mmap, ~150 page faults as lines filled it (0.09 a request under
        /// load) and an munmap (deploy/bench/README.md).
        var spare: [UInt8] = []
        var path: String
        var reopenRequested = false
        var stopping = false
    }

    private let state: Mutex<State>
    /// Serializes writers to the file descriptor (writer thread and `flush()`).
    private let output: Mutex<Int32>
    /// Lines dropped because the buffer passed its cap (the disk is not keeping up).
    let dropped = Atomic<Int>(0)
    private static let maxPending = 64 << 20
    /// A buffer larger than this (after a burst, or a disk that fell behind) is freed after
    /// its write rather than kept as the spare.
    private static let maxSpareCapacity = 4 << 20

    init(path: String) throws(LogSinkError) {
        state = Mutex(State(path: path))
        output = Mutex(try LogSink.open(path))
    }

    private static func open(_ path: String) throws(LogSinkError) -> Int32 {
        if path == "stdout" { return 1 }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if fd < 0 { throw LogSinkError(message: "cannot open access log \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Appends one finished line. Called on event loops.
    func append(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            state.withLock { s in
                if s.pending.count + bytes.count > LogSink.maxPending {
                    dropped.add(1, ordering: .relaxed)
                } else {
                    s.pending.append(contentsOf: bytes)
                }
            }
        }
    }

    func append(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { bytes in
            state.withLock { s in
                if s.pending.count + bytes.count > LogSink.maxPending {
                    dropped.add(1, ordering: .relaxed)
                } else {
                    s.pending.append(contentsOf: bytes)
                }
            }
        }
    }

    /// Asks the writer to reopen the file (after logrotate moved it) or switch to `path`.
    func reopen(path: String? = nil) {
        state.withLock { s in
            if let path { s.path = path }
            s.reopenRequested = true
        }
    }

    /// Writes everything buffered so far. Blocking: for the writer thread and shutdown only.
    func flush() {
        var batch: [UInt8] = []
        var reopenPath: String? = nil
        state.withLock { s in
            // The filled buffer leaves; the spare (empty, its capacity kept) takes its place.
            swap(&batch, &s.spare)
            swap(&batch, &s.pending)
            reopenPath = s.reopenRequested ? s.path : nil
            s.reopenRequested = false
        }
        output.withLock { fd in
            if !batch.isEmpty { LogSink.writeAll(fd, batch) }
            if let reopenPath {
                if let newFD = try? LogSink.open(reopenPath) {
                    if fd > 2 { close(fd) }
                    fd = newFD
                }
            }
        }
        guard batch.capacity <= LogSink.maxSpareCapacity else { return }
        batch.removeAll(keepingCapacity: true)  // the only reference: emptied in place
        state.withLock { s in
            if s.spare.capacity < batch.capacity { swap(&s.spare, &batch) }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return
                }
                offset += n
            }
        }
    }

    /// The capacities of the buffer being filled and of the spare (for tests).
    var capacities: (pending: Int, spare: Int) {
        state.withLock { ($0.pending.capacity, $0.spare.capacity) }
    }

    /// Starts the writer thread; it runs until `stop()`.
    func startWriter() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { arg in
            let sink = Unmanaged<LogSink>.fromOpaque(arg!).takeRetainedValue()
            gh_block_signals_in_thread()
            while !sink.state.withLock({ $0.stopping }) {
                usleep(50_000)
                sink.flush()
            }
            return nil
        }, box)
        pthread_detach(thread)
    }

    /// Stops the writer thread after a final flush.
    func stop() {
        state.withLock { $0.stopping = true }
        flush()
    }
}

struct LogSinkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
