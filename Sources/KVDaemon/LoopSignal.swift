#if canImport(Glibc)
import Glibc
#endif

/// Wakes the Raft loop's thread. Any thread may `signal`; the loop thread alone `wait`s, until a
/// signal or a deadline on the monotonic clock (so a wall-clock step never stretches a tick).
/// A signal sent while the loop is busy is remembered, so the next `wait` returns at once:
/// a burst of posts costs one wake-up.
///
/// A pthread mutex and condition variable rather than an `AsyncStream`: the loop blocks in
/// fsyncs and SQLite calls, so it runs on a thread of its own, never on Swift's cooperative pool,
/// and a blocked thread is what a condition variable wakes cheaply.
final class LoopSignal: @unchecked Sendable {
    // Both are only touched while `mutex` is held (or in init/deinit).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var signaled = false
    private var waiting = false

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Wakes the waiting thread, or makes its next `wait` return at once.
    func signal() {
        pthread_mutex_lock(mutex)
        signaled = true
        let wake = waiting
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(condition) }
    }

    /// Blocks until a signal or until the monotonic clock reaches `deadlineNanos`
    /// (`LoopSignal.nowNanos()`'s scale), whichever comes first, and consumes the signal.
    func wait(untilNanos deadlineNanos: UInt64) {
        pthread_mutex_lock(mutex)
        while !signaled, Self.nowNanos() < deadlineNanos {
            var deadline = timespec(
                tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
            waiting = true
            pthread_cond_timedwait(condition, mutex, &deadline)
            waiting = false
        }
        signaled = false
        pthread_mutex_unlock(mutex)
    }

    /// The monotonic clock, in nanoseconds.
    static func nowNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
