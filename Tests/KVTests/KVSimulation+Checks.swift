import KVStore
import Linearizability
import RaftCore

@testable import KVDaemon

/// The end-of-run checks, after the liveness phase has converged every node.
extension KVSimulation {
    /// Search steps the linearizability checker may spend on one seed's history; beyond that the
    /// history counts as unchecked (never as passed) and is reported.
    static let checkBudget = CheckBudget(maxSteps: 3_000_000)

    func checkAll() throws(KVSimViolation) {
        let last = try checkAppliedLogIsComplete()
        try checkReplicasAgree(at: last)
        let audit = try KVSimAudit()
        for index in 1...max(last, 1) where index <= last {
            guard let applied = applied[index] else { continue }
            try audit.apply(applied.entry, tick: applied.firstAppliedTick)
        }
        stats.appliedEntries = Int(last)
        stats.leaseExpiries = audit.leaseExpiries
        stats.leaseCheckpoints = audit.leaseCheckpoints
        try checkShadowMatches(audit, at: last)
        try checkCounter(audit)
        try checkLinearizable()
    }

    /// Every index up to the highest applied one was applied from the log by some node.
    private func checkAppliedLogIsComplete() throws(KVSimViolation) -> UInt64 {
        let last = applied.keys.max() ?? 0
        if let missing = (1...max(last, 1)).first(where: { $0 <= last && applied[$0] == nil }) {
            throw KVSimViolation("Applied log complete", "no node applied entry \(missing) from the log (last \(last))")
        }
        return last
    }

    /// After convergence every replica has applied the same entries and holds the same state.
    private func checkReplicasAgree(at last: UInt64) throws(KVSimViolation) {
        var reference: (id: NodeID, bytes: [UInt8])?
        for node in nodes {
            guard let driver = node.driver else { throw KVSimViolation("Liveness", "node \(node.id) is down at the end") }
            guard driver.machine.appliedIndex.rawValue == last else {
                throw KVSimViolation(
                    "Replicas converge", "node \(node.id) applied \(driver.machine.appliedIndex), the log reaches \(last)")
            }
            let bytes: [UInt8]
            do { bytes = try driver.machine.snapshot() } catch { throw KVSimViolation("Snapshot", "\(error)") }
            if let reference, reference.bytes != bytes {
                throw KVSimViolation("State Machine Safety", "nodes \(reference.id) and \(node.id) hold different states at \(last)")
            }
            reference = reference ?? (node.id, bytes)
        }
    }

    /// Replaying the recorded log gives exactly the replicas' state: the audit saw what they applied.
    private func checkShadowMatches(_ audit: KVSimAudit, at last: UInt64) throws(KVSimViolation) {
        guard let driver = nodes.first?.driver else { return }
        let shadow: [UInt8]
        let replica: [UInt8]
        do { (shadow, replica) = (try audit.machine.snapshot(), try driver.machine.snapshot()) } catch {
            throw KVSimViolation("Snapshot", "\(error)")
        }
        guard shadow == replica else {
            throw KVSimViolation("Audit replays the applied log", "the shadow state at \(last) differs from node \(nodes[0].id)'s")
        }
    }

    /// Exactly-once, seen by the clients: every INCR answered with a distinct value, and the
    /// counter equals both the increments the clients were told applied and those the log applied.
    private func checkCounter(_ audit: KVSimAudit) throws(KVSimViolation) {
        let replies = clients.flatMap(\.incrementReplies)
        let unresolved = clients.reduce(0) { $0 + $1.unresolvedIncrements }
        let final: Int64
        do {
            let record = try audit.machine.get(Array(KVSimClient.counterKey.utf8))
            final = record.flatMap { Int64(String(decoding: $0.value, as: UTF8.self)) } ?? 0
        } catch {
            throw KVSimViolation("Audit", "\(error)")
        }
        if Set(replies).count != replies.count {
            let repeated = Dictionary(grouping: replies, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            throw KVSimViolation("At most once", "INCR answered the same value twice: \(repeated.prefix(5))")
        }
        guard final == audit.expectedCounter,
            Int64(replies.count) <= final, final <= Int64(replies.count + unresolved)
        else {
            throw KVSimViolation(
                "At most once", "counter is \(final); the log applied \(audit.expectedCounter) first-time increments; "
                    + "clients were answered \(replies.count) times (\(unresolved) unresolved)")
        }
    }

    /// Linearizability of every KV operation the clients observed.
    private func checkLinearizable() throws(KVSimViolation) {
        let history = kvHistory.operations
        stats.historyOperations = history.count
        let checker = LinearizabilityChecker(model: KVModel<String, String>(), budget: Self.checkBudget)
        switch checker.check(history) {
        case .ok: break
        case .illegal(let counterexample): throw KVSimViolation("Linearizability", "\(counterexample)")
        case .unknown(let exhausted):
            stats.uncheckedHistories += 1
            note("linearizability not decided: \(exhausted)")
        }
    }
}
