import Linearizability

/// Parameters of a generated KV history.
struct GeneratorShape {
    var operationCount: Int
    var keys: [String]
    var values: [String] = ["a", "b", "c"]
    var clients = 5
    /// Upper bound on how long before its linearization point an operation is called, and how long
    /// after it returns.
    var maxWindow: Int64 = 10
    /// Upper bound on the gap between consecutive linearization points; with `maxWindow` it sets
    /// how many operations are in flight at once.
    var maxGap: Int64 = 4
    /// Probability that a write's reply is lost (unknown outcome).
    var unknownRate = 0.1
}

/// A linearizable KV history by construction: a real sequential execution of random operations
/// on a map, each given a random call/return window around the instant it took effect, with some
/// replies lost. Half of the lost writes are not applied at all (a request lost before it reached
/// the leader), the other half are (the reply was lost).
func generateKVHistory(_ shape: GeneratorShape, using rng: inout SeededGenerator) -> [KVOperation] {
    var state: [String: String] = [:]
    var clientFreeAt = Array(repeating: Int64(-1), count: shape.clients)
    var now: Int64 = 0
    var history: [KVOperation] = []
    while history.count < shape.operationCount {
        now += Int64.random(in: 1...shape.maxGap, using: &rng)
        let idle = clientFreeAt.indices.filter { clientFreeAt[$0] < now }
        guard let client = idle.randomElement(using: &rng) else { continue }
        let earliestCall = max(clientFreeAt[client] + 1, now - shape.maxWindow)
        let called = Int64.random(in: earliestCall...now, using: &rng)
        let returned = now + Int64.random(in: 0...shape.maxWindow, using: &rng)
        clientFreeAt[client] = returned

        let input = randomInput(shape, using: &rng)
        let isWrite = if case .get = input { false } else { true }
        if isWrite && Double.random(in: 0..<1, using: &rng) < shape.unknownRate {
            if Bool.random(using: &rng) { _ = apply(input, to: &state) }
            history.append(KVOperation(clientID: client, input: input, called: called, outcome: .unknown))
        } else {
            let output = apply(input, to: &state)
            history.append(KVOperation(clientID: client, input: input, called: called, returned: returned, output: output))
        }
    }
    return history
}

func randomInput(_ shape: GeneratorShape, using rng: inout SeededGenerator) -> KV.Input {
    let key = shape.keys.randomElement(using: &rng) ?? "x"
    let value = shape.values.randomElement(using: &rng) ?? "a"
    switch Int.random(in: 0..<10, using: &rng) {
    case 0..<4: return .get(key)
    case 4..<7: return .put(key, value)
    case 7: return .delete(key)
    default:
        let expected = Bool.random(using: &rng) ? nil : shape.values.randomElement(using: &rng)
        return .compareAndSwap(key, expected: expected, new: value)
    }
}

/// The sequential map that `KVModel` specifies, written independently of it.
func apply(_ input: KV.Input, to state: inout [String: String]) -> KV.Output {
    switch input {
    case .get(let key):
        return .value(state[key])
    case .put(let key, let value):
        state[key] = value
        return .ok
    case .delete(let key):
        return .existed(state.removeValue(forKey: key) != nil)
    case .compareAndSwap(let key, let expected, let new):
        guard state[key] == expected else { return .swapped(false) }
        state[key] = new
        return .swapped(true)
    }
}

/// The average number of operations with a known outcome in flight when each of them is called:
/// the concurrency the history was generated with. Unknown outcomes stay pending to the end and
/// are counted apart.
func averageConcurrency(_ history: [KVOperation]) -> Double {
    let known = history.filter { !$0.isOutcomeUnknown }
    var total = 0
    for operation in known {
        total += known.count { $0.callTime <= operation.callTime && $0.returnTime >= operation.callTime }
    }
    return Double(total) / Double(max(known.count, 1))
}
