import Synchronization

/// One client connection's replies, numbered in request order. The Raft loop completes them in
/// any order; the connection's writer takes every reply that is next in line at once and writes
/// them with a single flush, so a pipeline of N requests costs one write, not N.
final class ReplyPipeline: Sendable {
    private struct State {
        /// The number the next request gets.
        var reserved: UInt64 = 0
        /// The number of the next reply to write.
        var written: UInt64 = 0
        /// Replies that arrived and are not written yet.
        var ready: [UInt64: Reply] = [:]
        /// Tasks waiting until every request before a number is answered.
        var waiters: [(before: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// The reader, waiting until the writer has written up to a number.
        var roomWaiter: (written: UInt64, continuation: CheckedContinuation<Void, Never>)?
        /// No more requests will be reserved.
        var finished = false

        func answeredEverything(before sequence: UInt64) -> Bool {
            var next = written
            while next < sequence {
                guard ready[next] != nil else { return false }
                next += 1
            }
            return true
        }
    }

    private let state = Mutex(State())
    /// Signals the writer that replies may be ready; bursts coalesce into one wake-up.
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Numbers the next request.
    func reserve() -> UInt64 {
        state.withLock { state in
            defer { state.reserved += 1 }
            return state.reserved
        }
    }

    /// Requests reserved and not yet written.
    var outstanding: UInt64 { state.withLock { $0.reserved - $0.written } }

    /// Stores the reply to request `sequence` and wakes whoever it unblocks.
    func complete(_ sequence: UInt64, with reply: Reply) {
        let resumed = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.ready[sequence] = reply
            var resumed: [CheckedContinuation<Void, Never>] = []
            var waiting: [(before: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
            for waiter in state.waiters {
                if state.answeredEverything(before: waiter.before) {
                    resumed.append(waiter.continuation)
                } else {
                    waiting.append(waiter)
                }
            }
            state.waiters = waiting
            return resumed
        }
        for continuation in resumed { continuation.resume() }
        wake.yield()
    }

    /// Returns once every request numbered below `sequence` has its reply.
    func waitForAnswers(before sequence: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.answeredEverything(before: sequence) { return true }
                state.waiters.append((sequence, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Returns once fewer than `limit` requests are in progress: the reader stops reading (TCP
    /// backpressure on the client) instead of buffering without bound.
    func waitForRoom(below limit: UInt64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let room = state.withLock { state -> Bool in
                if state.reserved - state.written < limit { return true }
                state.roomWaiter = (state.reserved - limit + 1, continuation)
                return false
            }
            if room { continuation.resume() }
        }
    }

    /// Removes and returns the replies that are next in line.
    func takeWritable() -> [Reply] {
        let (replies, room) = state.withLock { state -> ([Reply], CheckedContinuation<Void, Never>?) in
            var replies: [Reply] = []
            while let reply = state.ready.removeValue(forKey: state.written) {
                replies.append(reply)
                state.written += 1
            }
            guard let waiter = state.roomWaiter, state.written >= waiter.written else { return (replies, nil) }
            state.roomWaiter = nil
            return (replies, waiter.continuation)
        }
        room?.resume()
        return replies
    }

    /// No more requests will come; the writer stops once everything reserved is written.
    func finish() {
        state.withLock { $0.finished = true }
        wake.yield()
    }

    /// True when the reader finished and every reply was written.
    var isDrained: Bool { state.withLock { $0.finished && $0.written == $0.reserved } }
}
