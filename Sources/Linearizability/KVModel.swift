/// A map of independent registers, one per key: get, put, delete and compare-and-swap.
///
/// Semantics encoded (a missing key and a deleted key are the same: absent):
/// - `get(k)` observes `.value(v)`, where `v` is the current value or nil if `k` is absent.
/// - `put(k, v)` sets `k` to `v`; output `.ok`.
/// - `delete(k)` makes `k` absent; output `.ok` if the client did not learn whether `k` existed,
///   or `.existed(b)` (Redis `DEL` answering 1 or 0) when it did, which is checked.
/// - `compareAndSwap(k, expected: e, new: n)` sets `k` to `n` if its current value is `e`
///   (`e == nil` means "`k` is absent"), answering `.swapped(true)`; otherwise leaves it alone and
///   answers `.swapped(false)`. A mismatch is a definite rejection *and* an observation that the
///   value was not `e`, so record it as `.swapped(false)`; do not drop it.
///
/// With an unknown outcome every operation is deterministic (a CAS that took effect swapped exactly
/// if the value matched), and a get with an unknown outcome observes nothing, so recording it is
/// pointless but harmless. A fenced write that answered `-STALE` did not write: leave it out of
/// the KV history (check it in `LockModel`); a fenced write that succeeded is a `put` here, and
/// one with an unknown outcome an unknown `put`.
///
/// Each key is its own partition. Handing the checker an output of the wrong kind for an input
/// (say `.swapped` for a `get`) is a programmer error and stops the process.
public struct KVModel<Key: Hashable & Sendable, Value: Hashable & Sendable>: Model {
    /// A request.
    public enum Input: Hashable, Sendable {
        /// Read `key`.
        case get(Key)
        /// Write `value` to `key`.
        case put(Key, Value)
        /// Remove `key`.
        case delete(Key)
        /// Write `new` to `key` if its value is `expected` (nil: if it is absent).
        case compareAndSwap(Key, expected: Value?, new: Value)

        /// The key the request touches, which is also its partition.
        public var key: Key {
            switch self {
            case .get(let key), .put(let key, _), .delete(let key), .compareAndSwap(let key, _, _): key
            }
        }
    }

    /// A reply.
    public enum Output: Hashable, Sendable {
        /// A get's answer: the value, or nil for an absent key.
        case value(Value?)
        /// A put's or delete's acknowledgement.
        case ok
        /// A delete's answer when it says whether the key existed.
        case existed(Bool)
        /// A compare-and-swap's answer: whether it swapped.
        case swapped(Bool)
    }

    /// The value of every present key.
    public typealias State = [Key: Value]

    /// The model; it has no parameters.
    public init() {}

    /// Every key absent.
    public var initialState: State { [:] }

    /// Applies one request; see the type's documentation for the semantics.
    public func step(_ state: State, _ input: Input, _ output: Output?) -> StepResult<State> {
        switch input {
        case .get(let key):
            switch output {
            case nil: return .legal(state)
            case .value(let observed)?: return state[key] == observed ? .legal(state) : .illegal
            case .ok?, .existed?, .swapped?: mismatched(input, output)
            }
        case .put(let key, let value):
            guard output == nil || output == .ok else { mismatched(input, output) }
            var next = state
            next[key] = value
            return .legal(next)
        case .delete(let key):
            var next = state
            let existed = next.removeValue(forKey: key) != nil
            switch output {
            case nil, .ok?: return .legal(next)
            case .existed(let observed)?: return observed == existed ? .legal(next) : .illegal
            case .value?, .swapped?: mismatched(input, output)
            }
        case .compareAndSwap(let key, let expected, let new):
            let swaps = state[key] == expected
            var next = state
            if swaps { next[key] = new }
            switch output {
            case nil: return .legal(next)
            case .swapped(let observed)?: return observed == swaps ? .legal(next) : .illegal
            case .value?, .ok?, .existed?: mismatched(input, output)
            }
        }
    }

    /// One partition per key, named after it.
    public func partition(_ history: [Operation<Input, Output>]) -> [Partition<Input, Output>] {
        Partition.grouping(history) { $0.key }
    }

    private func mismatched(_ input: Input, _ output: Output?) -> Never {
        preconditionFailure("KVModel: output \(String(describing: output)) cannot answer \(input)")
    }
}
