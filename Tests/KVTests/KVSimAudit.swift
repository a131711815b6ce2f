import KVStore
import RaftCore

/// Replays the log the cluster applied, entry by entry, on a fresh state machine and checks the
/// lock, fencing, exactly-once and lease rules on what was APPLIED (which State Machine Safety
/// makes the same on every replica; the simulator checks that separately):
/// - a lock passes only to a new holder whose token is the granting entry's index and exceeds every
///   earlier token of that lock; a holder changes only when the previous one released or its lease
///   ended; after every entry each holder's lease is alive (so no two leases ever hold one lock);
/// - a fenced write that applied carried the token of the lock's holder at that moment, and one
///   answered `STALE` left no trace; fence registers only rise;
/// - a session write whose `(client, seq)` already applied changes nothing (at most once);
/// - a lease ends by expiry no earlier than its TTL after its last renewal applied (in simulated
///   time, from when each entry was first applied anywhere).
final class KVSimAudit {
    struct Digest: Equatable {
        var keys: [[UInt8]: KVStateMachine.Record]
        var locks: [[UInt8]: KVStateMachine.LockHolder]
        var fences: [[UInt8]: UInt64]
        var leases: [UInt64: UInt64]
    }

    static let lockNames = ["L0", "L1"].map { Array($0.utf8) }
    static let fenceNames = ["fence-L0", "fence-L1"].map { Array($0.utf8) }

    let machine: KVStateMachine
    var lastToken: [[UInt8]: UInt64] = [:]
    var fenceHigh: [[UInt8]: UInt64] = [:]
    var lastSequence: [UInt64: UInt64] = [:]
    var lastRenewal: [UInt64: (tick: UInt64, ttlMillis: UInt64)] = [:]
    /// Sum of the counter increments that applied for the first time.
    var expectedCounter: Int64 = 0
    var lockGrants = 0
    var leaseExpiries = 0
    /// Leases named in applied checkpoint entries.
    var leaseCheckpoints = 0

    init() throws(KVSimViolation) {
        do { machine = try KVStateMachine(database: try SQLiteConnection.inMemory()) } catch {
            throw KVSimViolation("Audit", "cannot open the shadow state machine: \(error)")
        }
    }

    /// Applies `entry` (first applied anywhere at `tick`) and checks every rule it touches.
    func apply(_ entry: Entry, tick: UInt64) throws(KVSimViolation) {
        var command: KVCommand?
        if case .command(let bytes) = entry.payload { command = try? KVCommand(decoding: bytes) }
        let duplicate = command.map(isDuplicate) ?? false
        let fence = command.flatMap { Self.fence(of: $0.operation) }
        let before = try owners()
        let digestBefore = duplicate || fence != nil ? try digest() : nil
        let results: [KVApplied]
        do { results = try machine.apply([entry]) } catch {
            throw KVSimViolation("Audit", "shadow apply of \(entry.index) failed: \(error)")
        }
        guard let outcome = results.first else { throw KVSimViolation("Audit", "entry \(entry.index) did not apply") }
        let after = try owners()
        let at = "entry \(entry.term)/\(entry.index)"
        if duplicate, let digestBefore, try digest() != digestBefore, let stamp = command?.session {
            throw KVSimViolation(
                "At most once", "\(at): retry of client \(stamp.clientID) seq \(stamp.sequence) changed the state again: \(outcome.result)")
        }
        try checkLocks(before: before, after: after, entry: entry, command: command, at: at)
        if let command, !duplicate {
            noteSession(command, outcome.result)
            if let fence { try checkFenced(fence, holder: before[fence.lock] ?? nil, digestBefore, outcome.result, at: at) }
            try checkFenceRegister(command.operation, outcome.result, at: at)
            if case .increment(let key, let delta, _) = command.operation, key == Array("ctr".utf8),
                case .integer = outcome.result
            {
                expectedCounter += delta
            }
        }
        try checkLeases(outcome.events, tick: tick, at: at)
        if case .leaseCheckpoint(_, let checkpoints)? = command?.operation { leaseCheckpoints += checkpoints.count }
        try checkLeaseCount(at: at)
    }

    /// The live lease count the state machine keeps in memory equals the rows it holds.
    private func checkLeaseCount(at: String) throws(KVSimViolation) {
        let rows: Int
        do { rows = try machine.allLeases().count } catch { throw KVSimViolation("Audit", "\(error)") }
        guard machine.leaseCount == rows else {
            throw KVSimViolation("Lease count", "\(at): the state machine counts \(machine.leaseCount) leases, it holds \(rows)")
        }
    }

    private func isDuplicate(_ command: KVCommand) -> Bool {
        guard let stamp = command.session, command.operation != .sessionRegister,
            let last = lastSequence[stamp.clientID]
        else { return false }
        return stamp.sequence <= last
    }

    private func noteSession(_ command: KVCommand, _ result: KVResult) {
        if case .sessionRegistered(let client) = result { lastSequence[client] = 0 }
        guard let stamp = command.session, command.operation != .sessionRegister else { return }
        if case .error(.sessionExpired) = result { return }
        lastSequence[stamp.clientID] = stamp.sequence
    }

    static func fence(of operation: KVOperation) -> FenceCondition? {
        switch operation {
        case .put(_, _, _, _, let fence), .delete(_, let fence), .compareAndSwap(_, _, _, let fence),
            .increment(_, _, let fence), .deleteIf(_, _, let fence), .append(_, _, let fence), .setRange(_, _, _, let fence),
            .incrementFloat(_, _, let fence):
            return fence
        case .set(let request): return request.fence
        case .leaseGrant, .leaseKeepAlive, .leaseRevoke, .leaseExpire, .leaseCheckpoint, .lockAcquire, .lockRelease,
            .fence, .sessionRegister, .expire, .persist, .getEx, .getDelete, .rename, .copy, .multiSet, .flush, .expireKeys,
            .transaction, .read, .memberSet, .memberRemove:
            return nil
        }
    }

    private func checkLocks(
        before: [[UInt8]: KVStateMachine.LockHolder?], after: [[UInt8]: KVStateMachine.LockHolder?], entry: Entry,
        command: KVCommand?, at: String
    ) throws(KVSimViolation) {
        for name in Self.lockNames {
            let old = before[name] ?? nil
            let new = after[name] ?? nil
            let label = String(decoding: name, as: UTF8.self)
            if let new {
                guard try lease(new.leaseID) else {
                    throw KVSimViolation("Lock held by a live lease", "\(at): \(label) is held by lease \(new.leaseID), which has ended")
                }
            }
            guard old != new else { continue }
            if let old {
                let released: Bool
                if case .lockRelease(name, old.token)? = command?.operation { released = true } else { released = false }
                let leaseEnded = try !lease(old.leaseID)
                guard released || leaseEnded else {
                    throw KVSimViolation(
                        "One holder per lock", "\(at): \(label) passed from lease \(old.leaseID) (token \(old.token)) "
                            + "to \(new.map { "lease \($0.leaseID)" } ?? "nobody") while the holder neither released nor lost its lease")
                }
            }
            guard let new else { continue }
            let previous = lastToken[name] ?? 0
            guard new.token == entry.index.rawValue, new.token > previous else {
                throw KVSimViolation(
                    "Fencing tokens strictly increase", "\(at): \(label) granted with token \(new.token) after token \(previous)")
            }
            lastToken[name] = new.token
            lockGrants += 1
        }
    }

    private func checkFenced(
        _ fence: FenceCondition, holder: KVStateMachine.LockHolder?, _ digestBefore: Digest?, _ result: KVResult, at: String
    ) throws(KVSimViolation) {
        let label = "\(String(decoding: fence.lock, as: UTF8.self))#\(fence.token)"
        if case .error(.stale) = result {
            guard holder?.token != fence.token else {
                throw KVSimViolation("Fenced writes", "\(at): \(label) answered STALE although the token held the lock")
            }
            guard try digest() == digestBefore else {
                throw KVSimViolation("Fenced writes", "\(at): \(label) answered STALE but changed the state")
            }
            return
        }
        guard holder?.token == fence.token else {
            throw KVSimViolation(
                "Fenced writes", "\(at): \(label) applied (\(result)) while the holder's token was \(holder.map { "\($0.token)" } ?? "none")")
        }
    }

    private func checkFenceRegister(_ operation: KVOperation, _ result: KVResult, at: String) throws(KVSimViolation) {
        guard case .fence(let name, let token) = operation else { return }
        let high = fenceHigh[name] ?? 0
        switch result {
        case .fenceAccepted:
            guard token >= high else { throw KVSimViolation("Fence register", "\(at): accepted \(token) after \(high)") }
            fenceHigh[name] = token
        case .error(.stale):
            guard token < high else { throw KVSimViolation("Fence register", "\(at): refused \(token) at \(high)") }
        default:
            throw KVSimViolation("Fence register", "\(at): unexpected result \(result)")
        }
    }

    private func checkLeases(_ events: [KVEvent], tick: UInt64, at: String) throws(KVSimViolation) {
        for event in events {
            switch event {
            case .leaseGranted(let id, let ttl), .leaseRenewed(let id, _, let ttl):
                lastRenewal[id] = (tick, ttl)
            case .leaseEnded(let id, let expired):
                defer { lastRenewal[id] = nil }
                guard expired else { continue }
                leaseExpiries += 1
                guard let renewal = lastRenewal[id] else { continue }
                let livedMillis = (tick - renewal.tick) * KVSimParameters.tickMillis
                guard livedMillis >= renewal.ttlMillis else {
                    throw KVSimViolation(
                        "No early lease expiry", "\(at): lease \(id) expired \(livedMillis) ms after its last renewal "
                            + "(tick \(renewal.tick)), TTL \(renewal.ttlMillis) ms")
                }
            case .lockGranted, .sessionExpired, .membersChanged:
                break
            }
        }
    }

    // MARK: State queries

    private func owners() throws(KVSimViolation) -> [[UInt8]: KVStateMachine.LockHolder?] {
        var owners: [[UInt8]: KVStateMachine.LockHolder?] = [:]
        do { for name in Self.lockNames { owners[name] = .some(try machine.lockOwner(name)) } } catch {
            throw KVSimViolation("Audit", "\(error)")
        }
        return owners
    }

    private func lease(_ id: UInt64) throws(KVSimViolation) -> Bool {
        do { return try machine.lease(id) != nil } catch { throw KVSimViolation("Audit", "\(error)") }
    }

    /// Everything a client can observe, except lease clocks and session bookkeeping.
    func digest() throws(KVSimViolation) -> Digest {
        do {
            var digest = Digest(keys: [:], locks: [:], fences: [:], leases: [:])
            for (key, record) in try machine.list(prefix: [], limit: 1_000) { digest.keys[key] = record }
            for name in Self.lockNames { digest.locks[name] = try machine.lockOwner(name) }
            for name in Self.fenceNames { digest.fences[name] = try machine.fenceToken(name) }
            for lease in try machine.allLeases() { digest.leases[lease.id] = lease.epoch }
            return digest
        } catch {
            throw KVSimViolation("Audit", "\(error)")
        }
    }
}
