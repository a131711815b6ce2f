import Linearizability

/// Linearizability by definition, for small histories: some subset of the unknown-outcome
/// operations together with all the known ones has an order that respects real time (A before B
/// whenever A returned before B was called) and that the model accepts step by step from its
/// initial state. Exhaustive over subsets and orders, without memoization or partitioning, so it
/// shares nothing with the checker but the model's `step`; prefixes that already break real time
/// or the model are cut off, which skips no valid order.
func bruteForceLinearizable<M: Model>(_ model: M, _ history: [Operation<M.Input, M.Output>]) -> Bool {
    let unknownPositions = history.indices.filter { history[$0].isOutcomeUnknown }
    let known = history.indices.filter { !history[$0].isOutcomeUnknown }
    for subset in 0..<(1 << unknownPositions.count) {
        let chosen = unknownPositions.indices.filter { subset & (1 << $0) != 0 }.map { unknownPositions[$0] }
        if someOrderWorks(model, history, remaining: known + chosen, states: [model.initialState]) { return true }
    }
    return false
}

/// Whether `remaining` can follow a prefix that left the model in one of `states`.
private func someOrderWorks<M: Model>(
    _ model: M, _ history: [Operation<M.Input, M.Output>], remaining: [Int], states: [M.State]
) -> Bool {
    if remaining.isEmpty { return true }
    for (offset, candidate) in remaining.enumerated() {
        // The candidate may go next only if nothing still to come returned before it was called.
        let mustWait = remaining.contains { history[$0].returnTime < history[candidate].callTime }
        if mustWait { continue }
        let operation = history[candidate]
        let next = states.flatMap { model.step($0, operation.input, operation.output).states }
        if next.isEmpty { continue }
        var rest = remaining
        rest.remove(at: offset)
        if someOrderWorks(model, history, remaining: rest, states: next) { return true }
    }
    return false
}
