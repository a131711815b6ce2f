/// How much work one `LinearizabilityChecker.check` may do before it gives up with
/// `CheckResult.unknown`. Checking linearizability is NP-complete, so a harness that checks
/// arbitrary histories needs a bound; `nil` means no bound on that dimension.
///
/// Linearizable histories are found quickly (the search is greedy and rarely backtracks far), as
/// are illegal ones with few unknown outcomes. The expensive case is an illegal history with many
/// writes of unknown outcome pending at once: proving that no subset of them explains it can
/// take time exponential in how many are pending together, so give a fault harness a budget and
/// treat `.unknown` as "not checked", never as a pass.
public struct CheckBudget: Sendable, Equatable {
    /// Search steps (model steps plus backtracks) across all partitions.
    public var maxSteps: Int?
    /// Wall-clock time on the continuous clock, checked every 1,024 steps.
    public var maxDuration: Duration?

    /// A budget of at most `maxSteps` steps and `maxDuration` time; nil leaves that unbounded.
    public init(maxSteps: Int? = nil, maxDuration: Duration? = nil) {
        self.maxSteps = maxSteps
        self.maxDuration = maxDuration
    }

    /// No bound: the check runs until it has an answer.
    public static let unlimited = CheckBudget()
}

/// Checks histories against a model: Wing & Gong's search with Lowe's memoization (as in
/// Porcupine), one partition at a time.
///
/// ```swift
/// typealias KV = KVModel<String, String>
/// let history: [KV.Operation] = [
///     KV.Operation(clientID: 1, input: .put("x", "1"), called: 0, returned: 10, output: .ok),
///     // Timed out: may have been applied at any time after 5, or never.
///     KV.Operation(clientID: 2, input: .put("x", "2"), called: 5, outcome: .unknown),
///     KV.Operation(clientID: 3, input: .get("x"), called: 20, returned: 30, output: .value("2")),
/// ]
/// switch LinearizabilityChecker(model: KV()).check(history) {
/// case .ok: break
/// case .illegal(let counterexample): print(counterexample)
/// case .unknown(let exhausted): print(exhausted)
/// }
/// ```
public struct LinearizabilityChecker<M: Model>: Sendable {
    /// The sequential specification histories are checked against.
    public var model: M
    /// The bound on the work of one `check`.
    public var budget: CheckBudget

    /// A checker for `model` that gives up after `budget`.
    public init(model: M, budget: CheckBudget = .unlimited) {
        self.model = model
        self.budget = budget
    }

    /// Whether `history` is linearizable with respect to the model.
    ///
    /// Partitions are checked in the order `Model.partition` returns them; the first illegal one
    /// ends the check. Operations may be given in any order. Each operation's `index` is set to
    /// its position in `history` so that a counterexample points back into it.
    public func check(_ history: [Operation<M.Input, M.Output>]) -> CheckResult<M> {
        var indexed = history
        for position in indexed.indices { indexed[position].index = position }
        let partitions = model.partition(indexed)
        let partitionedCount = partitions.reduce(0) { $0 + $1.operations.count }
        precondition(partitionedCount == history.count, "Model.partition must keep every operation exactly once")

        var meter = BudgetMeter(budget)
        for (number, partition) in partitions.enumerated() {
            var search = PartitionSearch(model: model, operations: partition.operations)
            switch search.run(budget: &meter) {
            case .linearizable:
                continue
            case .illegal(let deadEnd):
                return .illegal(Counterexample(partition: partition, deadEnd: deadEnd))
            case .budgetExhausted:
                let exhausted = BudgetExhausted(
                    partition: partition.name,
                    stepsUsed: meter.stepsUsed,
                    partitionsChecked: number,
                    partitionCount: partitions.count
                )
                return .unknown(exhausted)
            }
        }
        return .ok
    }
}

/// The verdict on one history.
public enum CheckResult<M: Model>: Sendable {
    /// The history is linearizable.
    case ok
    /// The history is not linearizable; the counterexample says where the search got stuck.
    case illegal(Counterexample<M>)
    /// The budget ran out before an answer; nothing is known about the partitions not finished.
    case unknown(BudgetExhausted)

    /// Whether the verdict is `.ok`.
    public var isOK: Bool {
        switch self {
        case .ok: true
        case .illegal, .unknown: false
        }
    }

    /// Whether the verdict is `.illegal`.
    public var isIllegal: Bool {
        switch self {
        case .illegal: true
        case .ok, .unknown: false
        }
    }
}

/// Why a history is not linearizable, from the deepest point the search reached in the first
/// illegal partition.
///
/// `longestLinearizablePrefix` is one longest sequence of operations the search could linearize
/// (respecting real time); after it, `unplaceableOperation` had returned, so it had to be
/// linearized before anything called later, yet neither it nor any other operation in
/// `pendingOperations` could be linearized next from `stateAfterPrefix`. The fault is usually in
/// `unplaceableOperation`'s output or in a write among the pending operations.
public struct Counterexample<M: Model>: Sendable {
    /// The name of the partition (usually the key) that is not linearizable.
    public var partition: String
    /// Every operation of that partition.
    public var partitionOperations: [Operation<M.Input, M.Output>]
    /// The longest linearizable prefix found, in linearization order.
    public var longestLinearizablePrefix: [Operation<M.Input, M.Output>]
    /// The model state after that prefix.
    public var stateAfterPrefix: M.State
    /// The operation that could not be placed: the first to return among those not linearized.
    public var unplaceableOperation: Operation<M.Input, M.Output>
    /// The operations called but not linearized when `unplaceableOperation` returned (including
    /// it): none of them could be linearized next.
    public var pendingOperations: [Operation<M.Input, M.Output>]

    init(partition: Partition<M.Input, M.Output>, deadEnd: DeadEnd<M.State>) {
        let operations = partition.operations
        self.partition = partition.name
        partitionOperations = operations
        longestLinearizablePrefix = deadEnd.prefix.map { operations[$0] }
        stateAfterPrefix = deadEnd.stateAfterPrefix
        unplaceableOperation = operations[deadEnd.blocked]
        pendingOperations = deadEnd.pending.map { operations[$0] }
    }
}

extension Counterexample: CustomStringConvertible {
    /// A multi-line explanation naming the partition, the prefix, the state and the operation
    /// that could not be placed.
    public var description: String {
        var lines = [
            "not linearizable: partition \(partition) (\(partitionOperations.count) operations)",
            "longest linearizable prefix (\(longestLinearizablePrefix.count) operations):",
        ]
        lines += longestLinearizablePrefix.map { "    \($0)" }
        lines.append("state after the prefix: \(stateAfterPrefix)")
        lines.append("could not place: \(unplaceableOperation)")
        lines.append("it returned at \(unplaceableOperation.returnTime), and no pending operation can take effect next:")
        lines += pendingOperations.map { "    \($0)" }
        return lines.joined(separator: "\n")
    }
}

/// Where a check ran out of budget.
public struct BudgetExhausted: Sendable, Equatable, CustomStringConvertible {
    /// The partition being searched when the budget ran out.
    public var partition: String
    /// Search steps spent in the whole check.
    public var stepsUsed: Int
    /// Partitions found linearizable before this one.
    public var partitionsChecked: Int
    /// All partitions of the history.
    public var partitionCount: Int

    /// One line naming the partition and the work done.
    public var description: String {
        "budget exhausted after \(stepsUsed) steps in partition \(partition) "
            + "(\(partitionsChecked) of \(partitionCount) partitions found linearizable)"
    }
}

/// Counts search steps against a `CheckBudget`, across all partitions of one check.
struct BudgetMeter {
    private let maxSteps: Int
    private let deadline: ContinuousClock.Instant?
    private(set) var stepsUsed = 0

    init(_ budget: CheckBudget) {
        maxSteps = budget.maxSteps ?? Int.max
        deadline = budget.maxDuration.map { ContinuousClock.now.advanced(by: $0) }
    }

    /// Spends one step; false once the budget is gone. The clock is read every 1,024 steps
    /// because reading it costs more than a search step.
    mutating func spend() -> Bool {
        guard stepsUsed < maxSteps else { return false }
        stepsUsed += 1
        if let deadline, stepsUsed & 1023 == 0, ContinuousClock.now >= deadline { return false }
        return true
    }
}
