/// The deepest point at which the search of one partition got stuck: what the counterexample of
/// an illegal history reports.
struct DeadEnd<State> {
    /// Positions (in the partition) of the operations linearized so far, in linearization order.
    var prefix: [Int]
    /// The model state after `prefix`.
    var stateAfterPrefix: State
    /// The operation whose return came next in time, so it had to be linearized before anything
    /// called later, but could not be.
    var blocked: Int
    /// Every operation called before that return and not yet linearized: the candidates that
    /// were tried next and failed.
    var pending: [Int]
}

/// How the search of one partition ended.
enum PartitionVerdict<State> {
    case linearizable
    case illegal(DeadEnd<State>)
    case budgetExhausted
}

/// Wing & Gong's linearizability search with Lowe's memoization, as in Porcupine's
/// `checkSingle`, over one partition.
///
/// Every operation with a known outcome contributes a call entry and a return entry to a doubly
/// linked list sorted by time. The search walks the list from its head: at a call entry it tries
/// to linearize that operation now (the model accepts it from the current state, and the
/// configuration reached has not been explored before), and if so lifts both of its entries out
/// of the list and starts again from the head; reaching a return entry means the operation it
/// belongs to should already have been linearized, so the search backtracks by undoing the most
/// recent choice and trying the next candidate after it. The lists are arrays of node indices
/// rather than objects, so lifting and backtracking do no allocation or reference counting.
///
/// Operations with an unknown outcome return at +infinity, so they never force a backtrack; they
/// sit in a second list of call entries. When the walk of the first list reaches a return entry,
/// the unknown operations called before it are tried too, after the known ones: a linearization
/// that needs fewer unknown operations is found first. The search succeeds as soon as every
/// known operation is linearized, leaving out the unknown ones that never took effect.
///
/// Unknown operations with equal inputs are interchangeable once both are called (both stay
/// pending until the end), so only the earliest-called pending one of each input is tried: the
/// linearized ones of each input are always its earliest-called ones.
///
/// The cache extends Lowe's (linearized set, state) with subsumption over unknown operations: a
/// configuration is pruned if one with the same state, the same known operations linearized and
/// a subset of its unknown operations linearized was explored before. That one had every option
/// this one has (unknown operations never constrain what may come next), so it covers this one;
/// without it a failing search would enumerate every subset of the pending unknown operations.
struct PartitionSearch<M: Model> {
    typealias State = M.State

    private struct Frame {
        var callNode: Int
        var previousState: State
        /// Other states the operation's step allowed (nondeterminism), tried on backtracking.
        var untried: ArraySlice<State>
        /// For an unknown operation, the return node that bounded the candidates when it was
        /// chosen; -1 for a known operation.
        var bound: Int
    }

    private struct CacheKey: Hashable {
        var linearizedKnown: Bitset
        var state: State
    }

    private let model: M
    private let operations: [Operation<M.Input, M.Output>]
    private var lists: EntryLists
    /// Which known operations are linearized, by position in `operations`.
    private var linearizedKnown: Bitset
    /// Which unknown operations are linearized, by `lists.unknownRank`.
    private var linearizedUnknown: Bitset
    /// For each input class of unknown operations, how many are linearized.
    private var linearizedInClass: [Int]
    /// For each configuration explored, the antichain of unknown sets it was explored with.
    private var cache: [CacheKey: [Bitset]] = [:]
    private var frames: [Frame] = []
    private var state: State
    private var knownOutcomesLeft: Int
    private var deepest: DeadEnd<State>
    private var deepestDepth = -1

    init(model: M, operations: [Operation<M.Input, M.Output>]) {
        self.model = model
        self.operations = operations
        lists = EntryLists(operations)
        linearizedKnown = Bitset(capacity: operations.count)
        linearizedUnknown = Bitset(capacity: lists.unknownCount)
        linearizedInClass = Array(repeating: 0, count: lists.inputClassCount)
        state = model.initialState
        knownOutcomesLeft = operations.count - lists.unknownCount
        deepest = DeadEnd(prefix: [], stateAfterPrefix: state, blocked: -1, pending: [])
    }

    /// Searches for a linearization of the partition within what is left of `budget`.
    mutating func run(budget: inout BudgetMeter) -> PartitionVerdict<State> {
        // `node` walks the known list while `bound` is -1; once it reaches a return entry, that
        // entry becomes `bound` and `node` walks the unknown calls made before it.
        var node = lists.next[EntryLists.knownHead]
        var bound = -1
        while knownOutcomesLeft > 0 {
            guard budget.spend() else { return .budgetExhausted }
            if bound < 0 && lists.isReturn(node) {
                bound = node
                node = lists.next[lists.unknownHead]
            } else if bound >= 0 && node < bound && !isEarliestPendingOfItsInput(node) {
                node = lists.next[node]
            } else if bound < 0 || node < bound {
                let operation = operations[lists.operation[node]]
                let result = model.step(state, operation.input, operation.output)
                if tryLinearize(callNode: node, result, bound: bound) {
                    (node, bound) = (lists.next[EntryLists.knownHead], -1)
                } else {
                    node = lists.next[node]
                }
            } else {
                noteDeadEnd(at: bound)
                guard let frame = frames.popLast() else { return .illegal(deepest) }
                undo(frame)
                if tryLinearize(callNode: frame.callNode, untried: frame.untried, bound: frame.bound) {
                    (node, bound) = (lists.next[EntryLists.knownHead], -1)
                } else {
                    (node, bound) = (lists.next[frame.callNode], frame.bound)
                }
            }
        }
        return .linearizable
    }

    private mutating func tryLinearize(callNode: Int, _ result: StepResult<State>, bound: Int) -> Bool {
        switch result {
        case .illegal: false
        case .legal(let newState): tryLinearize(callNode: callNode, to: newState, untried: [], bound: bound)
        case .legalAnyOf(let newStates): tryLinearize(callNode: callNode, untried: newStates[...], bound: bound)
        }
    }

    private mutating func tryLinearize(callNode: Int, untried: ArraySlice<State>, bound: Int) -> Bool {
        var rest = untried
        while let newState = rest.popFirst() {
            if tryLinearize(callNode: callNode, to: newState, untried: rest, bound: bound) { return true }
        }
        return false
    }

    /// Linearizes the operation of `callNode` next, leading to `newState`, unless the cache shows
    /// that the configuration this reaches is covered by one explored before.
    private mutating func tryLinearize(
        callNode: Int, to newState: State, untried: ArraySlice<State>, bound: Int
    ) -> Bool {
        setLinearized(callNode, true)
        guard remember(CacheKey(linearizedKnown: linearizedKnown, state: newState)) else {
            setLinearized(callNode, false)
            return false
        }
        frames.append(Frame(callNode: callNode, previousState: state, untried: untried, bound: bound))
        state = newState
        lists.lift(callNode)
        if !lists.isUnknownCall(callNode) { knownOutcomesLeft -= 1 }
        return true
    }

    private mutating func undo(_ frame: Frame) {
        state = frame.previousState
        setLinearized(frame.callNode, false)
        lists.unlift(frame.callNode)
        if !lists.isUnknownCall(frame.callNode) { knownOutcomesLeft += 1 }
    }

    private mutating func setLinearized(_ callNode: Int, _ linearized: Bool) {
        let position = lists.operation[callNode]
        switch (lists.isUnknownCall(callNode), linearized) {
        case (false, true):
            linearizedKnown.insert(position)
        case (false, false):
            linearizedKnown.remove(position)
        case (true, true):
            linearizedUnknown.insert(lists.unknownRank[position])
            linearizedInClass[lists.inputClass[position]] += 1
        case (true, false):
            linearizedUnknown.remove(lists.unknownRank[position])
            linearizedInClass[lists.inputClass[position]] -= 1
        }
    }

    /// Whether the unknown call `node` is the earliest-called pending one with its input.
    private func isEarliestPendingOfItsInput(_ node: Int) -> Bool {
        let position = lists.operation[node]
        return lists.rankInClass[position] == linearizedInClass[lists.inputClass[position]]
    }

    /// Records the configuration (`key`, current unknown set) and answers whether it is new, that
    /// is, not covered by an explored one with the same key and a subset of its unknown set.
    private mutating func remember(_ key: CacheKey) -> Bool {
        // One hash lookup, and the antichain is edited in place.
        Self.insert(linearizedUnknown, intoAntichain: &cache[key, default: []])
    }

    private static func insert(_ unknownSet: Bitset, intoAntichain explored: inout [Bitset]) -> Bool {
        if explored.contains(where: { $0.isSubset(of: unknownSet) }) { return false }
        // Entries covered by the new one are dropped, so the list stays an antichain.
        explored.removeAll { unknownSet.isSubset(of: $0) }
        explored.append(unknownSet)
        return true
    }

    /// Remembers the deepest dead end for the counterexample. Only dead ends deeper than any
    /// before are copied, so a history that never backtracks pays nothing for this.
    private mutating func noteDeadEnd(at returnNode: Int) {
        guard frames.count > deepestDepth else { return }
        deepestDepth = frames.count
        deepest = DeadEnd(
            prefix: frames.map { lists.operation[$0.callNode] },
            stateAfterPrefix: state,
            blocked: lists.operation[returnNode],
            pending: lists.callsBefore(returnNode)
        )
    }
}
