import Linearizability

/// One safety verdict: a name, whether it holds, and what was seen.
struct Verdict: Sendable, Codable {
    var name: String
    var passed: Bool
    var detail: String
}

/// The final values read after the run, with every fault healed.
struct FinalReads: Sendable {
    var lockCounter: Int?
    var sessionCounter: Int?
}

/// The safety checks over what the workloads recorded.
enum Verdicts {
    static func all(_ state: Recorder.State, finals: FinalReads) -> [Verdict] {
        [registers(state), fenceRegister(state), fencedCounter(state, final: finals.lockCounter),
         sessionCounter(state, final: finals.sessionCounter), steadyHolder(state.steady)]
    }

    /// The steady holder's lease never ended early and its lock never changed hands while the
    /// lease was provably alive (see `SteadyHolderWorkload`); it must have held the lock at all.
    static func steadyHolder(_ tally: SteadyHolderTally) -> Verdict {
        let name = "no lease expired early, no lock changed hands"
        var problems = Array(tally.violations.prefix(5))
        if tally.holdings == 0 { problems.append("the steady holder never took its lock") }
        let summary = "steady holder: \(tally.holdings) holding(s), \(tally.renewals) renewals, "
            + "\(tally.failedRenewals) unanswered, longest renewal gap \(tally.longestGap / 1_000_000) ms, "
            + "\(tally.lapses) lease(s) lapsed after a whole TTL unrenewed"
        return Verdict(name: name, passed: problems.isEmpty, detail: ([summary] + problems).joined(separator: "; "))
    }

    /// Registers (and the lock workload's counter reads and writes) against the KV model.
    static func registers(_ state: Recorder.State) -> Verdict {
        let operations = state.registers.operations
        let unknown = operations.filter(\.isOutcomeUnknown).count
        let checker = LinearizabilityChecker(model: Registers(), budget: CheckBudget(maxDuration: Limits.checkDuration))
        let start = ContinuousClock.now
        let result = checker.check(operations)
        let summary = "\(operations.count) operations, \(unknown) of unknown outcome, checked in \(milliseconds(ContinuousClock.now - start)) ms"
        switch result {
        case .ok:
            return Verdict(name: "registers linearizable", passed: true, detail: summary)
        case .illegal(let counterexample):
            return Verdict(name: "registers linearizable", passed: false, detail: "\(summary)\n\(counterexample)")
        case .unknown(let exhausted):
            return Verdict(name: "registers linearizable", passed: false, detail: "\(summary): not checked, \(exhausted)")
        }
    }

    /// The fence register against the lock model: accepted tokens never go backwards.
    static func fenceRegister(_ state: Recorder.State) -> Verdict {
        let operations = state.fences.operations
        let accepted = operations.filter { $0.output == .ok }.count
        let stale = operations.filter { $0.output == .stale }.count
        let checker = LinearizabilityChecker(model: LockModel(), budget: CheckBudget(maxDuration: Limits.checkDuration))
        let start = ContinuousClock.now
        let result = checker.check(operations)
        let summary = "\(operations.count) FENCE requests: \(accepted) accepted, \(stale) refused as stale, "
            + "checked in \(milliseconds(ContinuousClock.now - start)) ms"
        switch result {
        case .ok:
            return Verdict(name: "fence tokens never go backwards", passed: true, detail: summary)
        case .illegal(let counterexample):
            return Verdict(name: "fence tokens never go backwards", passed: false, detail: "\(summary)\n\(counterexample)")
        case .unknown(let exhausted):
            return Verdict(name: "fence tokens never go backwards", passed: false, detail: "\(summary): not checked, \(exhausted)")
        }
    }

    /// The fenced counter: no lost or doubled increment among the acknowledged ones, and the
    /// tokens that wrote it grow with its value.
    static func fencedCounter(_ state: Recorder.State, final: Int?) -> Verdict {
        let name = "fenced counter: no lost or doubled increment"
        let acked = state.fencedIncrements
        let indeterminate = state.fencedIndeterminate
        var problems: [String] = []
        var writersOfValue: [Int: Int] = [:]
        for increment in acked { writersOfValue[increment.value, default: 0] += 1 }
        let doubled = writersOfValue.filter { $0.value > 1 }.keys.sorted()
        if !doubled.isEmpty { problems.append("values written by two acknowledged increments: \(doubled.prefix(10))") }
        let byValue = acked.sorted { $0.value < $1.value }
        for (lower, higher) in zip(byValue, byValue.dropFirst()) where lower.token >= higher.token {
            problems.append("token \(higher.token) wrote \(higher.value) after token \(lower.token) wrote \(lower.value)")
            break
        }
        guard let final else {
            problems.append("the final counter could not be read")
            return Verdict(name: name, passed: false, detail: problems.joined(separator: "; "))
        }
        if final < acked.count || final > acked.count + indeterminate {
            problems.append("final value \(final) outside [\(acked.count), \(acked.count + indeterminate)]")
        }
        if let highest = byValue.last, highest.value > final {
            problems.append("an acknowledged increment wrote \(highest.value) but the final value is \(final)")
        }
        let summary = "\(state.locksGranted) locks granted, \(state.lockStalls) holders stalled past their lease, "
            + "\(acked.count) increments acknowledged, "
            + "\(indeterminate) indeterminate, \(state.fencedStale) refused as stale; final value \(final)"
        return Verdict(name: name, passed: problems.isEmpty, detail: ([summary] + problems).joined(separator: "; "))
    }

    /// Exactly-once session increments.
    static func sessionCounter(_ state: Recorder.State, final: Int?) -> Verdict {
        let name = "session increments exactly once"
        let acked = state.sessionReplies.count
        let indeterminate = state.sessionIndeterminate
        var problems: [String] = []
        let repeated = Dictionary(grouping: state.sessionReplies, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        if !repeated.isEmpty { problems.append("two acknowledged increments answered the same value: \(repeated.prefix(10))") }
        guard let final else {
            problems.append("the final counter could not be read")
            return Verdict(name: name, passed: false, detail: problems.joined(separator: "; "))
        }
        if final < acked || final > acked + indeterminate {
            problems.append("final value \(final) outside [\(acked), \(acked + indeterminate)]")
        }
        if let highest = state.sessionReplies.max(), highest > final {
            problems.append("an increment answered \(highest) but the final value is \(final)")
        }
        let summary = "\(acked) acknowledged, \(indeterminate) indeterminate, \(state.sessionFailed) failed; final value \(final)"
        return Verdict(name: name, passed: problems.isEmpty, detail: ([summary] + problems).joined(separator: "; "))
    }
}
