import Testing

@testable import kvctl

@Suite struct ZipfianTests {
    static func draws(_ count: Int, seed: UInt64, keys: Int = 1000, theta: Double = 0.99) -> [Int] {
        let generator = ZipfianGenerator(count: keys, theta: theta)
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.next(&random) }
    }

    @Test func sameSeedSameSequence() {
        #expect(Self.draws(5000, seed: 42) == Self.draws(5000, seed: 42))
        #expect(Self.draws(5000, seed: 42) != Self.draws(5000, seed: 43))
    }

    @Test func ranksStayInRange() {
        for keys in [1, 2, 3, 10, 1000] {
            #expect(Self.draws(2000, seed: 7, keys: keys).allSatisfy { (0..<keys).contains($0) })
        }
    }

    @Test func skewFollowsTheLaw() {
        let keys = 1000
        let samples = 200_000
        var counts = [Int](repeating: 0, count: keys)
        for rank in Self.draws(samples, seed: 1, keys: keys) { counts[rank] += 1 }
        // P(rank 0) = 1 / zeta(1000, 0.99) ≈ 0.133; P(rank 1) ≈ 0.067.
        let zeta = ZipfianGenerator.zeta(keys, 0.99)
        let expected0 = Double(samples) / zeta
        #expect(abs(Double(counts[0]) - expected0) < 0.05 * expected0)
        #expect(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[500])
        // The hottest 10 % of keys draw well over half of the requests; uniform would be 10 %.
        let hot = counts.prefix(keys / 10).reduce(0, +)
        #expect(Double(hot) / Double(samples) > 0.6)
    }

    @Test func uniformChooserIsFlatAndSeeded() {
        let chooser = KeyChooser(keys: 10, distribution: .uniform, theta: 0.99)
        var first = SplitMix64(seed: 9)
        var second = SplitMix64(seed: 9)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<50_000 {
            let key = chooser.next(&first)
            #expect(key == chooser.next(&second))
            counts[key] += 1
        }
        #expect(counts.allSatisfy { abs($0 - 5000) < 400 })
    }

    @Test func clientStreamsDiffer() {
        var a = SplitMix64(seed: 1, stream: 1)
        var b = SplitMix64(seed: 1, stream: 2)
        #expect((0..<8).map { _ in a.next() } != (0..<8).map { _ in b.next() })
        var unit = SplitMix64(seed: 3)
        #expect((0..<10_000).allSatisfy { _ in (0..<1).contains(unit.nextUnit()) })
    }
}
