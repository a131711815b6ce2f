/// Picks key indexes in `0..<keys` by the plan's distribution.
struct KeyChooser: Sendable {
    private let keys: Int
    private let zipfian: ZipfianGenerator?

    init(keys: Int, distribution: BenchDistribution, theta: Double) {
        self.keys = keys
        zipfian = distribution == .zipfian ? ZipfianGenerator(count: keys, theta: theta) : nil
    }

    func next(_ random: inout SplitMix64) -> Int {
        if let zipfian { return zipfian.next(&random) }
        return Int(random.next() % UInt64(keys))
    }
}
