import KVProtocol

/// The requests of one operation and how to judge its replies.
enum BenchOperation: Sendable {
    case get(key: Int)
    case set(key: Int)
    case cas(key: Int, expected: [UInt8], new: [UInt8])
    case lockCycle(name: Int)
}

/// Makes each client's operations from its own seeded stream: which key, which command, which
/// value. One per connection, never shared.
struct BenchOperationSource: Sendable {
    let workload: BenchWorkload
    let readRatio: Double
    let prefix: [UInt8]
    let value: [UInt8]
    let chooser: KeyChooser
    private var random: SplitMix64
    /// `cas`: the value this client believes each key holds (absent: believed missing → "").
    private(set) var believed: [Int: [UInt8]] = [:]
    private var casCounter: UInt64 = 0
    private let clientTag: Int

    init(plan: BenchPlan, chooser: KeyChooser, client: Int, level: Int) {
        workload = plan.workload
        readRatio = plan.readRatio
        prefix = Array(plan.keyPrefix.utf8)
        var valueRandom = SplitMix64(seed: plan.seed, stream: 0)
        value = (0..<plan.valueBytes).map { _ in UInt8(ascii: "a") + UInt8(valueRandom.next() % 26) }
        self.chooser = chooser
        clientTag = client
        random = SplitMix64(seed: plan.seed, stream: UInt64(level) << 20 | UInt64(client + 1))
    }

    mutating func next() -> BenchOperation {
        let key = chooser.next(&random)
        switch workload {
        case .put: return .set(key: key)
        case .get: return .get(key: key)
        case .mixed: return random.nextUnit() < readRatio ? .get(key: key) : .set(key: key)
        case .cas:
            casCounter += 1
            return .cas(key: key, expected: believed[key] ?? [], new: casValue(casCounter))
        case .lock: return .lockCycle(name: key)
        }
    }

    func key(_ index: Int) -> [UInt8] {
        prefix + Array(String(index).utf8)
    }

    func lockName(_ index: Int) -> [UInt8] {
        prefix + Array("lock:\(index)".utf8)
    }

    /// The single request of a non-lock operation.
    func request(_ operation: BenchOperation) -> [[UInt8]] {
        switch operation {
        case .get(let key): return [Array("GET".utf8), self.key(key)]
        case .set(let key): return [Array("SET".utf8), self.key(key), value]
        case .cas(let key, let expected, let new): return [Array("CAS".utf8), self.key(key), expected, new]
        case .lockCycle: preconditionFailure("a lock cycle is several requests")
        }
    }

    /// Learns from a CAS reply: `:1` means the key now holds `new`; `:0` that the belief was
    /// wrong (the next CAS on it refreshes by `GET`).
    mutating func learn(_ operation: BenchOperation, reply: RESPValue) -> Bool {
        guard case .cas(let key, _, let new) = operation else { return true }
        if reply == .integer(1) {
            believed[key] = new
            return true
        }
        believed[key] = nil
        return false
    }

    /// Records what a refreshing `GET` (or the `SET` that created a missing key) found.
    mutating func believe(key: Int, value: [UInt8]) {
        believed[key] = value
    }

    /// The key of a CAS whose expected value is not known yet (to be read first).
    func keyNeedingRefresh(_ operation: BenchOperation) -> Int? {
        guard case .cas(let key, _, _) = operation, believed[key] == nil else { return nil }
        return key
    }

    /// The same CAS with the expected value learnt since.
    func refreshed(_ operation: BenchOperation) -> BenchOperation {
        guard case .cas(let key, _, let new) = operation else { return operation }
        return .cas(key: key, expected: believed[key] ?? [], new: new)
    }

    /// A distinct value of the configured size for the `count`-th CAS of this client.
    private func casValue(_ count: UInt64) -> [UInt8] {
        let stamp = Array("\(clientTag)-\(count)-".utf8)
        let size = max(value.count, stamp.count)
        return Array((stamp + value).prefix(size))
    }
}
