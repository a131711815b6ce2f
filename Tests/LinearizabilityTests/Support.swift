import Glibc
import Linearizability
import Testing

typealias KV = KVModel<String, String>
typealias KVOperation = KV.Operation
typealias LockOperation = LockModel.Operation

/// A put, get, delete or CAS that returned, written as compactly as the histories in the tests.
func op(_ client: Int, _ called: Int64, _ returned: Int64, _ input: KV.Input, _ output: KV.Output) -> KVOperation {
    KVOperation(clientID: client, input: input, called: called, returned: returned, output: output)
}

/// An operation whose outcome the client never learned (-TIMEOUT, -UNAVAILABLE, crash).
func unknown(_ client: Int, _ called: Int64, _ input: KV.Input) -> KVOperation {
    KVOperation(clientID: client, input: input, called: called, outcome: .unknown)
}

func lockOp(
    _ client: Int, _ called: Int64, _ returned: Int64, _ input: LockModel.Input, _ output: LockModel.Output
) -> LockOperation {
    LockOperation(clientID: client, input: input, called: called, returned: returned, output: output)
}

func lockUnknown(_ client: Int, _ called: Int64, _ input: LockModel.Input) -> LockOperation {
    LockOperation(clientID: client, input: input, called: called, outcome: .unknown)
}

func checkKV(_ history: [KVOperation], budget: CheckBudget = .unlimited) -> CheckResult<KV> {
    LinearizabilityChecker(model: KV(), budget: budget).check(history)
}

func checkLocks(_ history: [LockOperation]) -> CheckResult<LockModel> {
    LinearizabilityChecker(model: LockModel()).check(history)
}

/// The counterexample of an illegal verdict, or nil.
func counterexample<M: Model>(_ result: CheckResult<M>) -> Counterexample<M>? {
    if case .illegal(let counterexample) = result { return counterexample }
    return nil
}

/// SplitMix64: a tiny seeded generator, so that every randomized test replays from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seeds a randomized test runs: `LIN_FUZZ_SEEDS` seeds (default `defaultCount`) from
/// `LIN_FUZZ_FIRST_SEED` (default 1), so a failure replays with
/// `LIN_FUZZ_FIRST_SEED=<seed> LIN_FUZZ_SEEDS=1 swift test --filter LinearizabilityTests`.
func fuzzSeeds(defaultCount: UInt64) -> Range<UInt64> {
    func environment(_ name: String) -> UInt64? {
        guard let value = getenv(name) else { return nil }
        return UInt64(String(cString: value))
    }
    let first = environment("LIN_FUZZ_FIRST_SEED") ?? 1
    return first..<(first + (environment("LIN_FUZZ_SEEDS") ?? defaultCount))
}

func replayHint(_ seed: UInt64) -> String {
    "seed \(seed); replay: LIN_FUZZ_FIRST_SEED=\(seed) LIN_FUZZ_SEEDS=1 swift test --filter LinearizabilityTests"
}
