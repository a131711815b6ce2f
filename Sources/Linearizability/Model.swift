/// A sequential specification of an object, against which concurrent histories are checked
/// (after Porcupine's `Model`).
///
/// A history is linearizable if every operation with a known outcome, and any subset of the
/// operations with an unknown outcome, can be put in one sequential order that respects real time
/// (an operation that returned before another was called comes first) and in which `step` accepts
/// every operation, starting from `initialState`.
///
/// `step` must be a pure function of its arguments: the checker memoizes on `State` and calls
/// `step` many times, in any order, while it backtracks.
public protocol Model: Sendable {
    /// The state of the specified object. Equal states must behave identically under `step`,
    /// because the checker prunes a search branch that reaches a state it has already explored
    /// with the same set of operations linearized.
    associatedtype State: Hashable & Sendable
    /// An operation's request. Hashable so that the checker can treat operations with an unknown
    /// outcome and equal inputs as interchangeable, which keeps histories with many lost replies
    /// tractable.
    associatedtype Input: Hashable & Sendable
    /// An operation's reply.
    associatedtype Output: Sendable

    /// The state before any operation.
    var initialState: State { get }

    /// Applies one operation to `state`.
    ///
    /// `output` is what the client observed, or nil if the outcome is unknown; then the operation
    /// has taken effect (the checker only calls `step` for the case where it did) and may have
    /// produced any output the specification allows, so `step` returns every state it may lead to.
    /// Return `.illegal` when the operation cannot have produced `output` from `state`.
    func step(_ state: State, _ input: Input, _ output: Output?) -> StepResult<State>

    /// Splits a history into independent sub-histories that are checked separately, typically one
    /// per key. Linearizability is local (Herlihy & Wing), so a history is linearizable exactly if
    /// each per-object sub-history is; checking them separately turns one exponential search
    /// into several small ones. The default keeps the whole history in one partition.
    ///
    /// Every operation must land in exactly one partition, and operations that touch the same
    /// state must land in the same one.
    func partition(_ history: [Linearizability.Operation<Input, Output>]) -> [Partition<Input, Output>]
}

extension Model {
    /// No partitioning: the whole history is one partition named `all`.
    public func partition(_ history: [Linearizability.Operation<Input, Output>]) -> [Partition<Input, Output>] {
        [Partition(name: "all", operations: history)]
    }
}

/// What one operation does to a model state.
public enum StepResult<State> {
    /// The operation cannot have returned the observed output from this state.
    case illegal
    /// The operation is allowed and leads to exactly this state.
    case legal(State)
    /// The operation is allowed and may lead to any of these states (a nondeterministic
    /// specification, or an unknown output that leaves several possibilities open). An empty
    /// array means the same as `.illegal`.
    case legalAnyOf([State])
}

extension StepResult: Sendable where State: Sendable {}
extension StepResult: Equatable where State: Equatable {}

extension StepResult {
    /// Every state reachable through either `self` or `other`; used by models to express "this
    /// unknown outcome could have been either of these two observations".
    public func union(_ other: StepResult<State>) -> StepResult<State> {
        let states = self.states + other.states
        switch states.count {
        case 0: return .illegal
        case 1: return .legal(states[0])
        default: return .legalAnyOf(states)
        }
    }

    /// The states this result allows, in order.
    public var states: [State] {
        switch self {
        case .illegal: []
        case .legal(let state): [state]
        case .legalAnyOf(let states): states
        }
    }
}

/// An independent sub-history, checked on its own.
public struct Partition<Input, Output> {
    /// A name for reports, usually the key, e.g. `"x"` or `"lock deploy"`.
    public var name: String
    /// The operations of this sub-history, in any order.
    public var operations: [Operation<Input, Output>]

    /// A partition named `name` holding `operations`.
    public init(name: String, operations: [Operation<Input, Output>]) {
        self.name = name
        self.operations = operations
    }

    /// Groups `history` by `key(input)`, keeping the operations' order, one partition per distinct
    /// key in order of first appearance; each is named `String(describing: key)`.
    public static func grouping<Key: Hashable>(
        _ history: [Operation<Input, Output>],
        by key: (Input) -> Key
    ) -> [Partition<Input, Output>] {
        var positionOfKey: [Key: Int] = [:]
        var partitions: [Partition<Input, Output>] = []
        for operation in history {
            let operationKey = key(operation.input)
            if let position = positionOfKey[operationKey] {
                partitions[position].operations.append(operation)
            } else {
                positionOfKey[operationKey] = partitions.count
                partitions.append(Partition(name: String(describing: operationKey), operations: [operation]))
            }
        }
        return partitions
    }
}

extension Partition: Sendable where Input: Sendable, Output: Sendable {}

extension Model {
    /// An operation of this model's history, e.g. `KVModel<String, String>.Operation`.
    public typealias Operation = Linearizability.Operation<Input, Output>
}
