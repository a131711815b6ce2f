/// When each request of an open-loop run is due, and which ones are measured.
///
/// Request `i` is due at `start + i / rate`, whatever happened to the requests before it. Its
/// latency is measured from that intended time, not from when it was actually sent: a server
/// that stalls for a second is charged the waiting of every request that fell due meanwhile
/// (no coordinated omission). Requests due during the warm-up are sent but not measured.
struct OpenLoopSchedule: Sendable, Equatable {
    /// Requests per second over all connections.
    let rate: Double
    /// Monotonic nanoseconds at which request 0 is due.
    let start: UInt64
    /// Requests due during the warm-up (sent, not measured).
    let warmupCount: Int
    /// Requests due in the whole run, warm-up included.
    let totalCount: Int

    init(rate: Double, start: UInt64, warmupSeconds: Double, stop: BenchStop) {
        self.rate = rate
        self.start = start
        warmupCount = Int((warmupSeconds * rate).rounded(.up))
        switch stop {
        case .duration(let seconds): totalCount = warmupCount + max(1, Int((seconds * rate).rounded(.down)))
        case .requests(let count): totalCount = warmupCount + count
        }
    }

    /// Monotonic nanoseconds at which request `index` is due.
    func intendedTime(of index: Int) -> UInt64 {
        start + UInt64((Double(index) * 1e9 / rate).rounded())
    }

    /// Whether request `index` counts in the results.
    func isMeasured(_ index: Int) -> Bool {
        index >= warmupCount && index < totalCount
    }

    /// When the measured part begins (the due time of the first measured request).
    var measureFrom: UInt64 { intendedTime(of: warmupCount) }

    /// When the last request is due.
    var lastDue: UInt64 { intendedTime(of: totalCount - 1) }

    /// The requests connection `worker` of `workers` sends, in due order.
    func indexes(worker: Int, of workers: Int) -> StrideTo<Int> {
        stride(from: worker, to: totalCount, by: workers)
    }

    /// The latency of a request due at `intended` and answered at `completed`, in nanoseconds.
    static func latency(intended: UInt64, completed: UInt64) -> UInt64 {
        completed > intended ? completed - intended : 0
    }

    /// When a connection that is free at `freeAt` sends a request due at `intended`: on time if
    /// it is free, else as soon as it is (and the wait counts in the latency).
    static func sendTime(intended: UInt64, freeAt: UInt64) -> UInt64 {
        max(intended, freeAt)
    }
}
