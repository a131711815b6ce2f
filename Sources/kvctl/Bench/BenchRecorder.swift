import KVProtocol
import Histogram

/// A kind of failed request, by its error code or transport failure, and whether the request
/// may have taken effect (docs/PROTOCOL.md, "Errors").
struct BenchFailureKind: Error, Hashable, Sendable, Comparable {
    /// `NOTLEADER`, `ERR`, `TIMEOUT`, ..., or `connection lost`, `no reply`, `not sent`, `unreachable`.
    var name: String
    var indeterminate: Bool

    static func < (lhs: BenchFailureKind, rhs: BenchFailureKind) -> Bool {
        (lhs.indeterminate ? 1 : 0, lhs.name) < (rhs.indeterminate ? 1 : 0, rhs.name)
    }

    static func errorReply(_ text: String) -> BenchFailureKind {
        let code = String(text.prefix { $0 != " " }).uppercased()
        let outcome = KVClientError.outcome(ofErrorCode: code)
        return BenchFailureKind(name: code.isEmpty ? "ERR" : code, indeterminate: outcome == .indeterminate)
    }

    static func transport(_ failure: BenchTransportFailure) -> BenchFailureKind {
        switch failure {
        case .notSent: return BenchFailureKind(name: "not sent", indeterminate: false)
        case .closed: return BenchFailureKind(name: "connection lost", indeterminate: true)
        case .timedOut: return BenchFailureKind(name: "no reply in time", indeterminate: true)
        case .protocolViolation: return BenchFailureKind(name: "protocol violation", indeterminate: true)
        }
    }

    static let unreachable = BenchFailureKind(name: "unreachable", indeterminate: false)
}

/// What one connection (or a whole run, once merged) measured.
struct BenchRecorder: Sendable {
    /// Latencies above this (one hour, in microseconds) are recorded as this.
    static let latencyMaxMicros: UInt64 = 3_600_000_000

    /// Latencies of successful requests, in microseconds (3 significant digits).
    private(set) var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: BenchRecorder.latencyMaxMicros,
        numberOfSignificantValueDigits: .three)
    /// Successful requests completed in each second after the measurement began.
    private(set) var perSecond: [Int] = []
    private(set) var failures: [BenchFailureKind: Int] = [:]
    private(set) var succeeded = 0
    /// Open loop: requests never sent because the run ended too far behind schedule.
    var missed = 0
    /// `cas`: swaps refused because the key no longer held the expected value (`:0`).
    var casMisses = 0
    /// Monotonic nanoseconds of the last measured completion.
    private(set) var lastCompletion: UInt64 = 0

    let measureFrom: UInt64

    init(measureFrom: UInt64) {
        self.measureFrom = measureFrom
    }

    mutating func recordSuccess(latencyNanos: UInt64, completedAt: UInt64) {
        let micros = min(max(latencyNanos / 1000, 1), Self.latencyMaxMicros)
        histogram.record(micros)
        succeeded += 1
        countInSecond(completedAt)
    }

    mutating func recordFailure(_ kind: BenchFailureKind, completedAt: UInt64) {
        failures[kind, default: 0] += 1
        lastCompletion = max(lastCompletion, completedAt)
    }

    mutating func merge(_ other: BenchRecorder) {
        histogram.add(other.histogram)
        if other.perSecond.count > perSecond.count {
            perSecond += Array(repeating: 0, count: other.perSecond.count - perSecond.count)
        }
        for (second, count) in other.perSecond.enumerated() { perSecond[second] += count }
        failures.merge(other.failures, uniquingKeysWith: +)
        succeeded += other.succeeded
        missed += other.missed
        casMisses += other.casMisses
        lastCompletion = max(lastCompletion, other.lastCompletion)
    }

    var definiteFailures: Int { failures.filter { !$0.key.indeterminate }.values.reduce(0, +) }
    var indeterminateFailures: Int { failures.filter { $0.key.indeterminate }.values.reduce(0, +) }

    /// Latency at `percentile` (0...100) in milliseconds; 0 when nothing succeeded.
    func latencyMillis(_ percentile: Double) -> Double {
        guard histogram.totalCount > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    var maxLatencyMillis: Double { histogram.totalCount > 0 ? Double(histogram.max) / 1000 : 0 }

    private mutating func countInSecond(_ completedAt: UInt64) {
        lastCompletion = max(lastCompletion, completedAt)
        let second = completedAt > measureFrom ? Int((completedAt - measureFrom) / 1_000_000_000) : 0
        if second >= perSecond.count { perSecond += Array(repeating: 0, count: second + 1 - perSecond.count) }
        perSecond[second] += 1
    }
}
