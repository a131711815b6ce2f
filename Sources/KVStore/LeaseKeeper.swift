public import RaftCore

/// The leader's clock for leases (BRIEF §5). Only a leader decides that a lease expired, and it
/// does so by proposing `leaseExpire(id, term, epoch)`, which the state machine ignores if a newer
/// leader exists or the lease was renewed meanwhile.
///
/// Rules this type enforces:
/// - A leader keeps no deadlines (and so proposes no expiry) until `startLeading` is called,
///   which the daemon does once this term's no-op has been applied: every lease the log knows
///   of is then in the state machine.
/// - A new leader gives each lease its checkpointed remaining TTL from that moment: never less
///   (no early expiry), and since checkpoints go through the log every `checkpointIntervalMillis`,
///   at most remaining TTL + one checkpoint interval + the failover time more. Repeated
///   elections therefore cannot keep a lease alive forever (etcd #9888).
/// - Times are the leader's monotonic milliseconds, passed in: this type reads no clock.
public struct LeaseKeeper: Sendable {
    public var checkpointIntervalMillis: UInt64
    /// How long to wait before proposing an expiry again if the first proposal got lost.
    public var retryMillis: UInt64
    /// Most leases in one checkpoint entry.
    public var checkpointBatchMax = 1024

    struct Tracked: Sendable {
        var deadlineMillis: UInt64
        var epoch: UInt64
        var expiryProposedAtMillis: UInt64?
    }

    public private(set) var leaderTerm: Term?
    private var tracked: [UInt64: Tracked] = [:]
    private var lastCheckpointMillis: UInt64 = 0

    public init(checkpointIntervalMillis: UInt64, retryMillis: UInt64) {
        self.checkpointIntervalMillis = checkpointIntervalMillis
        self.retryMillis = retryMillis
    }

    /// This node leads `term` and its no-op has been applied: start every lease's clock from its
    /// checkpointed remaining TTL.
    public mutating func startLeading(term: Term, nowMillis: UInt64, leases: [KVStateMachine.LeaseRecord]) {
        leaderTerm = term
        lastCheckpointMillis = nowMillis
        tracked = [:]
        for lease in leases {
            tracked[lease.id] = Tracked(deadlineMillis: nowMillis &+ lease.remainingMillis, epoch: lease.epoch)
        }
    }

    /// This node no longer leads: forget every deadline (the next leader starts from the log).
    public mutating func stopLeading() {
        leaderTerm = nil
        tracked = [:]
    }

    /// Follows applied entries on the leader: grants and renewals start a full TTL now.
    public mutating func observe(_ events: [KVEvent], nowMillis: UInt64) {
        guard leaderTerm != nil else { return }
        for event in events {
            switch event {
            case .leaseGranted(let id, let ttl):
                tracked[id] = Tracked(deadlineMillis: nowMillis &+ ttl, epoch: 0)
            case .leaseRenewed(let id, let epoch, let ttl):
                tracked[id] = Tracked(deadlineMillis: nowMillis &+ ttl, epoch: epoch)
            case .leaseEnded(let id, _):
                tracked[id] = nil
            case .lockGranted, .sessionExpired:
                break
            }
        }
    }

    /// Milliseconds the lease has left on this leader, or nil if unknown here.
    public func remainingMillis(_ id: UInt64, nowMillis: UInt64) -> UInt64? {
        guard let lease = tracked[id] else { return nil }
        return lease.deadlineMillis > nowMillis ? lease.deadlineMillis - nowMillis : 0
    }

    /// Expiries to propose now: leases past their deadline, each proposed once (again after
    /// `retryMillis` if it is still tracked, meaning the proposal was lost).
    public mutating func dueExpiries(nowMillis: UInt64) -> [KVOperation] {
        guard let term = leaderTerm else { return [] }
        var operations: [KVOperation] = []
        for id in tracked.keys.sorted() {
            guard var lease = tracked[id], lease.deadlineMillis <= nowMillis else { continue }
            if let proposed = lease.expiryProposedAtMillis, nowMillis - proposed < retryMillis { continue }
            lease.expiryProposedAtMillis = nowMillis
            tracked[id] = lease
            operations.append(.leaseExpire(leaseID: id, leaderTerm: term.rawValue, epoch: lease.epoch))
        }
        return operations
    }

    /// Checkpoints of every lease's remaining TTL, due every `checkpointIntervalMillis`.
    public mutating func dueCheckpoints(nowMillis: UInt64) -> [KVOperation] {
        guard let term = leaderTerm, !tracked.isEmpty, nowMillis - lastCheckpointMillis >= checkpointIntervalMillis
        else { return [] }
        lastCheckpointMillis = nowMillis
        let checkpoints = tracked.keys.sorted().compactMap { id -> LeaseCheckpoint? in
            guard let lease = tracked[id] else { return nil }
            let remaining = lease.deadlineMillis > nowMillis ? lease.deadlineMillis - nowMillis : 0
            return LeaseCheckpoint(leaseID: id, epoch: lease.epoch, remainingMillis: remaining)
        }
        return stride(from: 0, to: checkpoints.count, by: checkpointBatchMax).map { start in
            .leaseCheckpoint(
                leaderTerm: term.rawValue,
                checkpoints: Array(checkpoints[start..<min(start + checkpointBatchMax, checkpoints.count)]))
        }
    }
}
