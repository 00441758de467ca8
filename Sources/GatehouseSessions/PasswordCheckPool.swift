import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A few worker threads that run password checks (~50 ms each at bcrypt cost 10) off the
/// event loops, behind a bounded queue.
///
/// **Threading.** ``submit(user:password:verifier:completion:)`` may be called from any thread.
/// The completion is called **on a pool thread**, never on the submitting thread: a server
/// must hand the result back to its own loop (e.g. store it where the loop can find it and
/// call `event_active` on an event of that loop) and must not touch loop-owned objects in the
/// completion itself. The completion should return quickly: while it runs, its thread checks
/// no passwords.
///
/// **Bounds.** At most `queueCapacity` checks wait (running ones not counted); a submission
/// beyond that is refused at once with ``Admission/busy`` and its completion is never called,
/// so a flood of logins costs a bounded amount of memory and CPU.
public final class PasswordCheckPool: Sendable {
    /// Whether a submission was taken.
    public enum Admission: Sendable, Equatable {
        /// Queued; the completion will be called on a pool thread.
        case queued
        /// The queue is full or the pool is shut down; the completion will not be called.
        case busy
    }

    /// Worker threads.
    public let threadCount: Int
    /// Most checks waiting for a worker.
    public var queueCapacity: Int { queue.capacity }

    private let queue: CheckQueue
    /// Joinable worker threads; emptied by ``shutdown()``.
    private let threads: Mutex<[pthread_t]>

    /// Starts `threads` workers (at least 1).
    public init(threads: Int = 2, queueCapacity: Int = 256) {
        threadCount = max(threads, 1)
        let queue = CheckQueue(capacity: queueCapacity)
        self.queue = queue
        var started: [pthread_t] = []
        for _ in 0..<threadCount {
            var thread = pthread_t()
            // Each thread owns one reference, released when it ends (passwordCheckWorker).
            let context = Unmanaged.passRetained(queue).toOpaque()
            let status = pthread_create(&thread, nil, passwordCheckWorker, context)
            guard status == 0 else {
                Unmanaged<CheckQueue>.fromOpaque(context).release()
                continue
            }
            started.append(thread)
        }
        precondition(!started.isEmpty, "PasswordCheckPool: cannot start a thread")
        self.threads = Mutex(started)
    }

    /// Lets the workers finish what is queued and end; they keep the queue alive until then.
    deinit {
        queue.stop()
        threads.withLock { threads in
            for thread in threads { pthread_detach(thread) }
            threads.removeAll()
        }
    }

    /// Queues a check of `password` for `user` against `verifier` (its users and dummy hash).
    /// When queued, `completion(true)` follows for a correct password, `completion(false)` for
    /// a wrong one or an unknown user (after the same work), **on a pool thread**.
    @discardableResult
    public func submit(user: String, password: [UInt8], verifier: PasswordVerifier,
                       completion: @escaping @Sendable (Bool) -> Void) -> Admission {
        submit(work: { verifier.check(user: user, password: password) }, completion: completion)
    }

    /// Queues any check; the seam the tests use to hold a worker.
    @discardableResult
    func submit(work: @escaping @Sendable () -> Bool, completion: @escaping @Sendable (Bool) -> Void) -> Admission {
        queue.enqueue(CheckQueue.Job(work: work, completion: completion)) ? .queued : .busy
    }

    /// Checks waiting for a worker now (for metrics).
    public var waitingCount: Int { queue.waitingCount }

    /// Refuses new submissions (``Admission/busy``), lets the workers finish every queued
    /// check (their completions are called), and waits for the threads to end. Call it from
    /// outside the pool (not in a completion), e.g. when the server has drained.
    public func shutdown() {
        queue.stop()
        let joinable = threads.withLock { threads in
            defer { threads.removeAll() }
            return threads
        }
        for thread in joinable {
            if pthread_equal(thread, pthread_self()) != 0 {
                pthread_detach(thread)  // called from a completion: it cannot join itself
            } else {
                pthread_join(thread, nil)
            }
        }
    }
}
