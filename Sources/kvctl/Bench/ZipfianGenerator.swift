#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zipfian ranks in `0..<count`: rank `r` is drawn with probability proportional to
/// `1 / (r + 1)^theta`, so rank 0 is the hottest key. The method of Gray et al., "Quickly
/// generating billion-record synthetic databases" (SIGMOD 1994), as YCSB uses it: one O(count)
/// pass for the normalising constant, then O(1) per draw.
struct ZipfianGenerator: Sendable {
    let count: Int
    let theta: Double
    private let zetaN: Double
    private let alpha: Double
    private let eta: Double
    private let halfPowTheta: Double

    init(count: Int, theta: Double) {
        precondition(count >= 1 && theta > 0 && theta < 1, "ZipfianGenerator needs count >= 1 and 0 < theta < 1")
        self.count = count
        self.theta = theta
        zetaN = Self.zeta(count, theta)
        let zeta2 = Self.zeta(min(count, 2), theta)
        alpha = 1 / (1 - theta)
        eta = count <= 1 ? 1 : (1 - pow(2 / Double(count), 1 - theta)) / (1 - zeta2 / zetaN)
        halfPowTheta = pow(0.5, theta)
    }

    /// The next rank, from `random`.
    func next(_ random: inout SplitMix64) -> Int {
        let u = random.nextUnit()
        let uz = u * zetaN
        if uz < 1 { return 0 }
        if count >= 2 && uz < 1 + halfPowTheta { return 1 }
        let rank = Int(Double(count) * pow(eta * u - eta + 1, alpha))
        return min(max(rank, 0), count - 1)
    }

    /// The sum over `1...n` of `1 / i^theta`.
    static func zeta(_ n: Int, _ theta: Double) -> Double {
        var sum = 0.0
        for i in 1...max(n, 1) { sum += 1 / pow(Double(i), theta) }
        return sum
    }
}
