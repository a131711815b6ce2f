public import RaftCore

/// The leader's clock for leases. Only a leader decides that a lease expired, and it does so by
/// proposing `leaseExpire(id, term, epoch)`, which the state machine ignores if a newer leader
/// exists or the lease was renewed meanwhile.
///
/// Rules this type enforces:
/// - A leader keeps no deadlines (and so proposes no expiry) until `startLeading` is called,
///   which the daemon does once this term's no-op has been applied: every lease the log knows
///   of is then in the state machine.
/// - A new leader gives each lease the remaining TTL last recorded in the log, from the moment it
///   starts leading: never less, so no lease expires early.
/// - The log records a lease's remaining TTL when it is granted, when it is renewed and when a
///   leader checkpoints it. A new leader over-grants a lease by at most the age of that record
///   (plus the failover time), and by at most the recorded remaining TTL itself. So a checkpoint
///   is needed only when the record is older than `checkpointIntervalMillis` and the recorded
///   remaining TTL is longer than `checkpointIntervalMillis`: then a new leader gives a lease at
///   most its true remaining TTL + one checkpoint interval + the failover time. A lease renewed
///   more often than the interval is never checkpointed.
/// - A new leader cannot know how old each record is, so `firstCheckpointDelayMillis` after it
///   starts leading it checkpoints every lease that still has longer than that left. Every leader
///   that lasts that long therefore wears every idle lease down: repeated elections cannot keep a
///   lease alive forever, however long the checkpoint interval.
/// - The work per call is proportional to what is due, not to how many leases exist: deadlines
///   and checkpoint times live in two `DeadlineHeap`s, and finding that nothing is due costs one
///   look at the top of each.
/// - Times are the leader's monotonic milliseconds, passed in: this type reads no clock.
public struct LeaseKeeper: Sendable {
    /// How old a lease's recorded remaining TTL may grow before it is checkpointed (if that
    /// recorded TTL is longer than this).
    public var checkpointIntervalMillis: UInt64
    /// After starting to lead, when to checkpoint every lease with longer than this left.
    public var firstCheckpointDelayMillis: UInt64
    /// How long to wait before proposing an expiry again if the first proposal got lost.
    public var retryMillis: UInt64
    /// Most leases in one checkpoint entry.
    public var checkpointBatchMax = 1024
    /// Most leases checkpointed by one call of `dueCheckpoints` (one tick). The rest stay due and
    /// go out on the following ticks, so a burst (every lease, after an election) is spread out
    /// instead of filling the log in one go.
    public var checkpointsPerTickMax = 4096

    /// What the leader knows of one lease.
    struct Tracked: Sendable {
        var deadlineMillis: UInt64
        var epoch: UInt64
    }

    public private(set) var leaderTerm: Term?
    private var tracked: [UInt64: Tracked] = [:]
    /// When each lease's expiry is due: its deadline, or after an expiry was proposed, the time
    /// to propose it again.
    private var expiries = DeadlineHeap()
    /// When each lease needs a checkpoint; a lease that needs none has no entry.
    private var checkpoints = DeadlineHeap()

    /// A keeper that does nothing until `startLeading`. `firstCheckpointDelayMillis` defaults to
    /// the checkpoint interval; the daemon passes the election timeout.
    public init(checkpointIntervalMillis: UInt64, retryMillis: UInt64, firstCheckpointDelayMillis: UInt64? = nil) {
        self.checkpointIntervalMillis = checkpointIntervalMillis
        self.retryMillis = retryMillis
        self.firstCheckpointDelayMillis = firstCheckpointDelayMillis ?? checkpointIntervalMillis
    }

    /// Leases this leader tracks.
    public var trackedCount: Int { tracked.count }

    /// Heap nodes looked at or moved so far: the work done by `observe`, `dueExpiries` and
    /// `dueCheckpoints`, for tests that assert on work rather than on time.
    var heapSteps: UInt64 { expiries.steps + checkpoints.steps }

    /// This node leads `term` and its no-op has been applied: start every lease's clock from its
    /// recorded remaining TTL. O(n log n) at most (the heaps are built in O(n)); it runs once per
    /// election.
    public mutating func startLeading(term: Term, nowMillis: UInt64, leases: [KVStateMachine.LeaseRecord]) {
        leaderTerm = term
        tracked = Dictionary(minimumCapacity: leases.count)
        var deadlines: [(id: UInt64, dueMillis: UInt64)] = []
        var firstCheckpoints: [(id: UInt64, dueMillis: UInt64)] = []
        deadlines.reserveCapacity(leases.count)
        firstCheckpoints.reserveCapacity(leases.count)
        for lease in leases {
            let deadline = nowMillis &+ lease.remainingMillis
            tracked[lease.id] = Tracked(deadlineMillis: deadline, epoch: lease.epoch)
            deadlines.append((lease.id, deadline))
            if lease.remainingMillis > firstCheckpointDelayMillis {
                firstCheckpoints.append((lease.id, nowMillis &+ firstCheckpointDelayMillis))
            }
        }
        expiries = DeadlineHeap(deadlines)
        checkpoints = DeadlineHeap(firstCheckpoints)
    }

    /// This node no longer leads: forget every deadline (the next leader starts from the log).
    public mutating func stopLeading() {
        leaderTerm = nil
        tracked = [:]
        expiries.removeAll()
        checkpoints.removeAll()
    }

    /// Follows applied entries on the leader: grants and renewals start a full TTL now, and
    /// record that TTL in the log.
    public mutating func observe(_ events: [KVEvent], nowMillis: UInt64) {
        guard leaderTerm != nil else { return }
        for event in events {
            switch event {
            case .leaseGranted(let id, let ttl):
                restart(id, epoch: 0, ttlMillis: ttl, nowMillis: nowMillis)
            case .leaseRenewed(let id, let epoch, let ttl):
                restart(id, epoch: epoch, ttlMillis: ttl, nowMillis: nowMillis)
            case .leaseEnded(let id, _):
                tracked[id] = nil
                expiries.cancel(id)
                checkpoints.cancel(id)
            case .lockGranted, .sessionExpired, .membersChanged:
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
    /// `retryMillis` if it is still tracked, meaning the proposal was lost). Costs O(log n) per
    /// expiry returned, plus one look when none is due.
    public mutating func dueExpiries(nowMillis: UInt64) -> [KVOperation] {
        guard let term = leaderTerm else { return [] }
        var operations: [KVOperation] = []
        while let due = expiries.popDue(nowMillis: nowMillis) {
            guard let lease = tracked[due.id] else { continue }
            expiries.schedule(due.id, atMillis: nowMillis &+ retryMillis)
            operations.append(.leaseExpire(leaseID: due.id, leaderTerm: term.rawValue, epoch: lease.epoch))
        }
        return operations
    }

    /// Checkpoints due now, at most `checkpointsPerTickMax` leases in entries of at most
    /// `checkpointBatchMax`: each lease whose recorded remaining TTL is older than the checkpoint
    /// interval and was longer than it (or that this leader has not checkpointed yet since its
    /// first-checkpoint delay). A proposed checkpoint counts as the lease's new record. Costs
    /// O(log n) per lease checkpointed, plus one look when none is due.
    public mutating func dueCheckpoints(nowMillis: UInt64) -> [KVOperation] {
        guard let term = leaderTerm else { return [] }
        var due: [LeaseCheckpoint] = []
        while due.count < checkpointsPerTickMax, let next = checkpoints.popDue(nowMillis: nowMillis) {
            guard let lease = tracked[next.id] else { continue }
            let remaining = lease.deadlineMillis > nowMillis ? lease.deadlineMillis - nowMillis : 0
            due.append(LeaseCheckpoint(leaseID: next.id, epoch: lease.epoch, remainingMillis: remaining))
            recorded(next.id, remainingMillis: remaining, nowMillis: nowMillis)
        }
        return stride(from: 0, to: due.count, by: checkpointBatchMax).map { start in
            .leaseCheckpoint(
                leaderTerm: term.rawValue, checkpoints: Array(due[start..<min(start + checkpointBatchMax, due.count)]))
        }
    }

    /// A grant or renewal applied: the lease has `ttlMillis` from now, and the log says so.
    private mutating func restart(_ id: UInt64, epoch: UInt64, ttlMillis: UInt64, nowMillis: UInt64) {
        let deadline = nowMillis &+ ttlMillis
        tracked[id] = Tracked(deadlineMillis: deadline, epoch: epoch)
        expiries.schedule(id, atMillis: deadline)
        recorded(id, remainingMillis: ttlMillis, nowMillis: nowMillis)
    }

    /// The log now records `remainingMillis` for `id`, as of `nowMillis`: a checkpoint is due one
    /// interval later if the record would by then be the only thing stopping a new leader from
    /// over-granting by more than the interval, and none is needed otherwise.
    private mutating func recorded(_ id: UInt64, remainingMillis: UInt64, nowMillis: UInt64) {
        if remainingMillis > checkpointIntervalMillis {
            checkpoints.schedule(id, atMillis: nowMillis &+ checkpointIntervalMillis)
        } else {
            checkpoints.cancel(id)
        }
    }
}
