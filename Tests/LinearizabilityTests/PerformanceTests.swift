import Linearizability
import Testing

/// The checker must be fast enough to run on every simulation seed.
@Suite struct PerformanceTests {
    /// The guard against a search blow-up, in search steps rather than seconds so that it means
    /// the same on a loaded machine: these histories need a small fraction of it, and an
    /// exponential search exceeds it (the check then returns `.unknown`, which fails the test).
    /// Elapsed time is printed for information only.
    static let stepBudget = CheckBudget(maxSteps: 2_000_000)

    @Test("3,000 operations over 4 keys at concurrency about 5 check in well under a second")
    func largeHistory() {
        let seed = fuzzSeeds(defaultCount: 1).lowerBound
        var rng = SeededGenerator(seed: seed)
        let shape = GeneratorShape(operationCount: 3_000, keys: ["a", "b", "c", "d"], clients: 6, maxWindow: 15, maxGap: 3)
        let history = generateKVHistory(shape, using: &rng)
        let clock = ContinuousClock()
        var result: CheckResult<KV> = .ok
        let elapsed = clock.measure { result = checkKV(history, budget: Self.stepBudget) }
        let concurrency = averageConcurrency(history)
        let unknownCount = history.count { $0.isOutcomeUnknown }
        print(
            "performance: \(history.count) operations over 4 keys, \(unknownCount) with unknown outcome, "
                + "concurrency \(concurrency): \(elapsed) (\(replayHint(seed)))"
        )
        #expect(result.isOK, "\(replayHint(seed))")
        #expect(concurrency > 3 && concurrency < 7, "the history must be about 5-concurrent, was \(concurrency)")

    }

    @Test("1,000 operations on one key (no partitioning help) check quickly")
    func singleKey() {
        let seed = fuzzSeeds(defaultCount: 1).lowerBound
        var rng = SeededGenerator(seed: seed)
        let history = generateKVHistory(GeneratorShape(operationCount: 1_000, keys: ["x"], clients: 6, maxWindow: 15, maxGap: 3), using: &rng)
        let clock = ContinuousClock()
        var result: CheckResult<KV> = .ok
        let elapsed = clock.measure { result = checkKV(history, budget: Self.stepBudget) }
        let unknownCount = history.count { $0.isOutcomeUnknown }
        print(
            "performance: \(history.count) operations on one key, \(unknownCount) with unknown outcome, "
                + "concurrency \(averageConcurrency(history)): \(elapsed)"
        )
        #expect(result.isOK, "\(replayHint(seed))")

    }

    @Test("a 3,000-operation history with one read changed to a value never written is rejected quickly")
    func largeIllegalHistory() throws {
        let seed = fuzzSeeds(defaultCount: 1).lowerBound
        var rng = SeededGenerator(seed: seed)
        let shape = GeneratorShape(
            operationCount: 3_000, keys: ["a", "b", "c", "d"], clients: 6, maxWindow: 15, maxGap: 3, unknownRate: 0
        )
        var history = generateKVHistory(shape, using: &rng)
        let reads = history.indices.filter { position in
            if case .get = history[position].input { return position > 2_500 }
            return false
        }
        let position = try #require(reads.first)
        history[position].outcome = .returned(.value("never written"), at: history[position].returnTime)
        let clock = ContinuousClock()
        var result: CheckResult<KV> = .ok
        let elapsed = clock.measure { result = checkKV(history, budget: Self.stepBudget) }
        print("performance: illegal history of \(history.count) operations rejected in \(elapsed)")
        let example = try #require(counterexample(result), "\(replayHint(seed))")
        #expect(example.unplaceableOperation.index == position)

    }
}
