#if canImport(Glibc)
import Glibc
#endif

/// The bounded job queue behind ``PasswordCheckPool``: a ring of at most `capacity` waiting
/// jobs, a pthread mutex and a condition variable that idle workers sleep on.
///
/// `@unchecked Sendable`: every stored variable is read and written only with `mutex` held.
final class CheckQueue: @unchecked Sendable {
    struct Job {
        let work: @Sendable () -> Bool
        let completion: @Sendable (Bool) -> Void
    }

    let capacity: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var ring: [Job?]
    private var head = 0
    private var waiting = 0
    private var stopping = false

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        ring = Array(repeating: nil, count: self.capacity)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Adds a job; false when the queue is full or stopping.
    func enqueue(_ job: Job) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !stopping, waiting < capacity else { return false }
        ring[(head + waiting) % capacity] = job
        waiting += 1
        pthread_cond_signal(wake)
        return true
    }

    /// The next job, waiting for one; nil once the queue is stopping and empty.
    func next() -> Job? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while waiting == 0 {
            if stopping { return nil }
            pthread_cond_wait(wake, mutex)
        }
        let job = ring[head]
        ring[head] = nil
        head = (head + 1) % capacity
        waiting -= 1
        return job
    }

    /// Refuses new jobs; the workers finish the waiting ones, then ``next()`` returns nil.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
    }

    /// Jobs waiting for a worker (not those being run).
    var waitingCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return waiting
    }
}

/// A worker thread's body: takes the queue retained by ``PasswordCheckPool`` for this thread,
/// runs jobs until the queue stops, then releases it.
func passwordCheckWorker(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let queue = Unmanaged<CheckQueue>.fromOpaque(context!).takeRetainedValue()
    while let job = queue.next() {
        job.completion(job.work())
    }
    return nil
}
