import Linearizability
import Testing

/// Randomized cross-checks: generated linearizable histories must pass, and on small histories the
/// checker must agree with the exhaustive search of `bruteForceLinearizable` whatever the outputs.
@Suite struct FuzzTests {
    @Test("histories from a real sequential execution are linearizable, and mutating one read is caught exactly")
    func mutatedReads() {
        var mutationsIllegal = 0
        var mutationsExplainable = 0
        for seed in fuzzSeeds(defaultCount: 400) {
            var rng = SeededGenerator(seed: seed)
            let shape = GeneratorShape(operationCount: Int.random(in: 3...7, using: &rng), keys: ["x"], values: ["a", "b"])
            var history = generateKVHistory(shape, using: &rng)
            #expect(checkKV(history).isOK, "\(replayHint(seed))")
            #expect(bruteForceLinearizable(KV(), history), "\(replayHint(seed))")

            let reads = history.indices.filter { position in
                if case .get = history[position].input { return !history[position].isOutcomeUnknown }
                return false
            }
            guard let position = reads.randomElement(using: &rng), case .value(let seen)? = history[position].output else {
                continue
            }
            let others = ([nil] + shape.values.map { Optional($0) }).filter { $0 != seen }
            let mutated = others.randomElement(using: &rng) ?? nil
            history[position].outcome = .returned(.value(mutated), at: history[position].returnTime)

            let expected = bruteForceLinearizable(KV(), history)
            let verdict = checkKV(history)
            #expect(verdict.isOK == expected && verdict.isIllegal == !expected, "\(replayHint(seed)): \(history)")
            if expected { mutationsExplainable += 1 } else { mutationsIllegal += 1 }
        }
        print("mutated reads: \(mutationsIllegal) illegal, \(mutationsExplainable) still explainable")
        // A generator whose mutations were never illegal (or never explainable) would test little.
        #expect(mutationsIllegal > 0 && mutationsExplainable > 0)
    }

    @Test("random KV histories with random outputs: the checker agrees with the exhaustive search")
    func randomKVOutputs() {
        var illegal = 0
        let seeds = fuzzSeeds(defaultCount: 400)
        for seed in seeds {
            var rng = SeededGenerator(seed: seed)
            let history = randomKVHistory(count: Int.random(in: 1...7, using: &rng), using: &rng)
            let expected = bruteForceLinearizable(KV(), history)
            let verdict = checkKV(history)
            #expect(verdict.isOK == expected && verdict.isIllegal == !expected, "\(replayHint(seed)): \(history)")
            if !expected { illegal += 1 }
        }
        print("random KV histories: \(illegal) of \(seeds.count) illegal")
    }

    @Test("random lock and fence histories with random outputs: the checker agrees with the exhaustive search")
    func randomLockOutputs() {
        var illegal = 0
        let seeds = fuzzSeeds(defaultCount: 400)
        for seed in seeds {
            var rng = SeededGenerator(seed: seed)
            let history = randomLockHistory(count: Int.random(in: 1...7, using: &rng), using: &rng)
            let expected = bruteForceLinearizable(LockModel(), history)
            let verdict = checkLocks(history)
            #expect(verdict.isOK == expected && verdict.isIllegal == !expected, "\(replayHint(seed)): \(history)")
            if !expected { illegal += 1 }
        }
        print("random lock histories: \(illegal) of \(seeds.count) illegal")
    }

    @Test("partitioning by key does not change the verdict")
    func partitioningIsSound() {
        for seed in fuzzSeeds(defaultCount: 100) {
            var rng = SeededGenerator(seed: seed)
            var history = generateKVHistory(GeneratorShape(operationCount: 40, keys: ["x", "y", "z"]), using: &rng)
            if Bool.random(using: &rng), let position = history.indices.randomElement(using: &rng),
                case .get = history[position].input, !history[position].isOutcomeUnknown
            {
                history[position].outcome = .returned(.value("zzz"), at: history[position].returnTime)
            }
            let partitioned = checkKV(history)
            let whole = LinearizabilityChecker(model: UnpartitionedKV()).check(history)
            #expect(partitioned.isOK == whole.isOK && partitioned.isIllegal == whole.isIllegal, "\(replayHint(seed))")
        }
    }

    @Test("larger generated histories over several keys are linearizable")
    func largerHistories() {
        for seed in fuzzSeeds(defaultCount: 30) {
            var rng = SeededGenerator(seed: seed)
            let shape = GeneratorShape(operationCount: 300, keys: ["x", "y", "z"], unknownRate: 0.2)
            let history = generateKVHistory(shape, using: &rng)
            let result = checkKV(history)
            #expect(result.isOK, "\(replayHint(seed)): \(result)")
        }
    }
}

/// `KVModel` without partitioning, to compare verdicts with and without it.
struct UnpartitionedKV: Model {
    let kv = KV()
    var initialState: KV.State { kv.initialState }
    func step(_ state: KV.State, _ input: KV.Input, _ output: KV.Output?) -> StepResult<KV.State> {
        kv.step(state, input, output)
    }
}

/// Random inputs and random (mostly wrong) outputs on two keys and overlapping windows.
func randomKVHistory(count: Int, using rng: inout SeededGenerator) -> [KVOperation] {
    let shape = GeneratorShape(operationCount: count, keys: ["x", "y"], values: ["a", "b"])
    let values: [String?] = [nil, "a", "b"]
    return (0..<count).map { _ in
        let input = randomInput(shape, using: &rng)
        let output: KV.Output =
            switch input {
            case .get: .value(values.randomElement(using: &rng) ?? nil)
            case .put: .ok
            case .delete: Bool.random(using: &rng) ? .ok : .existed(Bool.random(using: &rng))
            case .compareAndSwap: .swapped(Bool.random(using: &rng))
            }
        return randomTiming(input, output, using: &rng)
    }
}

func randomLockHistory(count: Int, using rng: inout SeededGenerator) -> [LockOperation] {
    (0..<count).map { _ in
        let token = Int.random(in: 1...4, using: &rng)
        let owner = Int.random(in: 1...3, using: &rng)
        let input: LockModel.Input
        let output: LockModel.Output
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1: (input, output) = (.acquire(lock: "L", owner: owner), .granted(token: token))
        case 2: (input, output) = (.release(lock: "L", token: token), Bool.random(using: &rng) ? .ok : .notHeld)
        case 3:
            let accepted = Bool.random(using: &rng)
            (input, output) = (.fencedWrite(lock: "L", token: token, key: "k", value: "v"), accepted ? .ok : .stale)
        case 4: (input, output) = (.expire(lock: "L"), .ok)
        default: (input, output) = (.fence(name: "F", token: token), Bool.random(using: &rng) ? .ok : .stale)
        }
        return randomTiming(input, output, using: &rng)
    }
}

/// An operation at a random place in [0, 30), sometimes with an unknown outcome.
func randomTiming<Input, Output>(
    _ input: Input, _ output: Output, using rng: inout SeededGenerator
) -> Operation<Input, Output> {
    let called = Int64.random(in: 0..<30, using: &rng)
    if Int.random(in: 0..<5, using: &rng) == 0 {
        return Operation(clientID: 0, input: input, called: called, outcome: .unknown)
    }
    let returned = called + Int64.random(in: 0..<10, using: &rng)
    return Operation(clientID: 0, input: input, called: called, returned: returned, output: output)
}
