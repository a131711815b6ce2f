import Linearizability

/// `kvd-faults --check-history FILE`: checks a register history written by an earlier run, one
/// key at a time, with a budget of its own, and prints each key's verdict.
enum HistoryCheck {
    /// Returns whether every key is linearizable.
    static func run(path: String, budget: Duration) throws(HarnessError) -> Bool {
        let operations = try HistoryFile.read(path)
        say("\(path): \(operations.count) operations, \(operations.filter(\.isOutcomeUnknown).count) of unknown outcome")
        var allOK = true
        for partition in Registers().partition(operations) {
            let unknown = partition.operations.filter(\.isOutcomeUnknown).count
            let checker = LinearizabilityChecker(model: Registers(), budget: CheckBudget(maxDuration: budget))
            let start = ContinuousClock.now
            let result = checker.check(partition.operations)
            let took = milliseconds(ContinuousClock.now - start)
            let head = "key \(partition.name): \(partition.operations.count) operations, \(unknown) unknown, \(took) ms:"
            switch result {
            case .ok:
                say("\(head) linearizable")
            case .illegal(let counterexample):
                allOK = false
                say("\(head) NOT linearizable\n\(counterexample)")
            case .unknown(let exhausted):
                allOK = false
                say("\(head) not checked: \(exhausted)")
            }
        }
        return allOK
    }
}
