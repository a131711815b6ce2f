/// Durations of Raft loop iterations: how many, the longest, and a log-scaled histogram (four
/// buckets per power of two of microseconds, so a percentile is exact to within 25 %), for
/// `INFO` and the soak reports. Fixed size: 256 counters, whatever the run's length.
struct LoopIterationStats {
    private(set) var count: UInt64 = 0
    private(set) var maxMicros: UInt64 = 0
    private var buckets = [UInt64](repeating: 0, count: 256)

    mutating func record(micros: UInt64) {
        count += 1
        maxMicros = max(maxMicros, micros)
        buckets[Self.bucket(micros)] += 1
    }

    /// The smallest bucket bound at or above the `fraction` quantile (0 when nothing was recorded).
    func quantileMicros(_ fraction: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = UInt64((Double(count) * fraction).rounded(.up))
        var seen: UInt64 = 0
        for (index, inBucket) in buckets.enumerated() {
            seen += inBucket
            if seen >= max(rank, 1) { return min(Self.upperBound(index), maxMicros) }
        }
        return maxMicros
    }

    static func bucket(_ micros: UInt64) -> Int {
        guard micros >= 4 else { return Int(micros) }
        let exponent = 63 - micros.leadingZeroBitCount
        let sub = Int(micros >> UInt64(exponent - 2)) - 4
        return min(255, 4 * (exponent - 1) + sub)
    }

    static func upperBound(_ bucket: Int) -> UInt64 {
        guard bucket >= 4 else { return UInt64(bucket) }
        let exponent = bucket / 4 + 1
        let sub = bucket % 4
        return (UInt64(sub + 5) << UInt64(exponent - 2)) - 1
    }
}
