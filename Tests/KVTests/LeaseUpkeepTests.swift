import RaftCore
import Testing

@testable import KVStore

/// The leader's lease upkeep costs what changes, not what exists: checkpoints only for leases
/// whose recorded remaining TTL has grown stale, and per-tick work proportional to what is due.
@Suite struct LeaseUpkeepTests {
    static let tickMillis: UInt64 = 50

    /// A keeper with the daemon's defaults: 5 s checkpoint interval, first checkpoint and expiry
    /// retry from a 500 ms election timeout.
    func keeper() -> LeaseKeeper {
        LeaseKeeper(checkpointIntervalMillis: 5_000, retryMillis: 1_000, firstCheckpointDelayMillis: 500)
    }

    /// A lease as the state machine would hand it to a new leader.
    static func lease(_ id: UInt64, remainingMillis: UInt64, epoch: UInt64 = 0) -> KVStateMachine.LeaseRecord {
        KVStateMachine.LeaseRecord(
            id: id, ttlMillis: max(remainingMillis, 30_000), remainingMillis: remainingMillis, epoch: epoch)
    }

    /// The leases named in checkpoint operations, with their remaining TTLs.
    func checkpointed(_ operations: [KVOperation]) -> [LeaseCheckpoint] {
        operations.flatMap { operation -> [LeaseCheckpoint] in
            if case .leaseCheckpoint(_, let checkpoints) = operation { return checkpoints }
            Issue.record("not a checkpoint: \(operation)")
            return []
        }
    }

    @Test("a lease renewed more often than the checkpoint interval is never checkpointed")
    func renewedLeaseNeverCheckpoints() {
        var keeper = keeper()
        keeper.startLeading(term: 2, nowMillis: 0, leases: [])
        keeper.observe([.leaseGranted(leaseID: 7, ttlMillis: 12_000)], nowMillis: 0)
        var epoch: UInt64 = 0
        for tick in 1...(120_000 / Self.tickMillis) {
            let now = tick * Self.tickMillis
            if now % 4_000 == 0 {
                epoch += 1
                keeper.observe([.leaseRenewed(leaseID: 7, epoch: epoch, ttlMillis: 12_000)], nowMillis: now)
            }
            #expect(keeper.dueCheckpoints(nowMillis: now).isEmpty, "checkpoint at \(now) ms")
            #expect(keeper.dueExpiries(nowMillis: now).isEmpty, "expiry at \(now) ms")
        }
    }

    @Test("an idle lease is checkpointed each interval while its recorded TTL exceeds it, then expires once")
    func idleLeaseCheckpointsOncePerInterval() {
        var keeper = LeaseKeeper(checkpointIntervalMillis: 1_000, retryMillis: 2_000, firstCheckpointDelayMillis: 500)
        keeper.startLeading(term: 3, nowMillis: 0, leases: [])
        keeper.observe([.leaseGranted(leaseID: 9, ttlMillis: 10_000)], nowMillis: 0)
        var checkpoints: [(atMillis: UInt64, remainingMillis: UInt64)] = []
        var expiries: [UInt64] = []
        for tick in 1...(13_000 / Self.tickMillis) {
            let now = tick * Self.tickMillis
            for checkpoint in checkpointed(keeper.dueCheckpoints(nowMillis: now)) {
                #expect(checkpoint.leaseID == 9 && checkpoint.epoch == 0)
                checkpoints.append((now, checkpoint.remainingMillis))
            }
            expiries += keeper.dueExpiries(nowMillis: now).map { _ in now }
        }
        // Recorded 10 s at 0, then 9 s at 1 s, ... 1 s at 9 s: not longer than the interval, so
        // the record can over-grant by at most the interval and no further checkpoint is needed.
        #expect(checkpoints.map(\.atMillis) == (1...9).map { UInt64($0) * 1_000 })
        #expect(checkpoints.map(\.remainingMillis) == (1...9).reversed().map { UInt64($0) * 1_000 })
        #expect(expiries == [10_000, 12_000], "proposed once at the deadline, again after the retry delay")
    }

    @Test("a new leader checkpoints, after its first-checkpoint delay, every lease with longer than that left")
    func firstCheckpointAfterAnElection() {
        var keeper = keeper()
        let leases = [
            Self.lease(1, remainingMillis: 30_000, epoch: 4), Self.lease(2, remainingMillis: 400),
            Self.lease(3, remainingMillis: 2_000, epoch: 1),
        ]
        keeper.startLeading(term: 5, nowMillis: 10_000, leases: leases)
        #expect(keeper.dueCheckpoints(nowMillis: 10_499).isEmpty)
        let first = checkpointed(keeper.dueCheckpoints(nowMillis: 10_500))
        #expect(first == [
            LeaseCheckpoint(leaseID: 1, epoch: 4, remainingMillis: 29_500),
            LeaseCheckpoint(leaseID: 3, epoch: 1, remainingMillis: 1_500),
        ])
        // Lease 1 recorded 29.5 s: due again one interval later. Lease 3 recorded 1.5 s: never again.
        #expect(keeper.dueCheckpoints(nowMillis: 15_499).isEmpty)
        let second = checkpointed(keeper.dueCheckpoints(nowMillis: 15_500))
        #expect(second == [LeaseCheckpoint(leaseID: 1, epoch: 4, remainingMillis: 24_500)])
    }

    @Test("leaders that each last only the first-checkpoint delay still wear an idle lease down")
    func shortLeadershipsCannotKeepALeaseAlive() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease(ttlMillis: 4_000)
        var now: UInt64 = 0
        var elections = 0
        while try kv.machine.lease(lease) != nil, elections < 100 {
            try kv.newLeaderTerm()
            elections += 1
            var keeper = keeper()
            keeper.startLeading(term: Term(kv.term), nowMillis: now, leases: try kv.machine.allLeases())
            for _ in 0..<12 {  // 600 ms, shorter than the 5 s checkpoint interval
                now += Self.tickMillis
                for operation in keeper.dueCheckpoints(nowMillis: now) + keeper.dueExpiries(nowMillis: now) {
                    try kv.apply(operation)
                }
            }
        }
        #expect(try kv.machine.lease(lease) == nil, "a 4 s lease survived \(elections) elections")
        #expect(now <= 4_000 + 2 * 600, "expired later than TTL plus the first-checkpoint delay and a failover")
    }

    @Test("a burst of due checkpoints is spread over ticks, checkpointsPerTickMax at a time")
    func checkpointBurstIsCapped() {
        var keeper = keeper()
        keeper.checkpointsPerTickMax = 4_096
        keeper.checkpointBatchMax = 1_024
        let leases = (1...10_000).map { Self.lease(UInt64($0), remainingMillis: 60_000) }
        keeper.startLeading(term: 2, nowMillis: 0, leases: leases)
        let ticks = [500, 550, 600, 650].map { keeper.dueCheckpoints(nowMillis: $0) }
        #expect(ticks.map(\.count) == [4, 4, 2, 0])
        let ids = ticks.flatMap(checkpointed).map(\.leaseID)
        #expect(ids == (1...10_000).map(UInt64.init), "each lease once, lowest id first")
    }

    @Test("100,000 tracked leases with nothing due: a tick looks at the top of each heap and nothing more")
    func nothingDueCostsConstantWork() {
        var keeper = keeper()
        let leases = (1...100_000).map { Self.lease(UInt64($0), remainingMillis: 20_000 + UInt64($0) % 10_000) }
        keeper.startLeading(term: 2, nowMillis: 0, leases: leases)
        let before = keeper.heapSteps
        for now in (0..<100).map({ UInt64($0) * 5 }) {
            #expect(keeper.dueExpiries(nowMillis: now).isEmpty)
            #expect(keeper.dueCheckpoints(nowMillis: now).isEmpty)
        }
        #expect(keeper.heapSteps - before == 2 * 100, "two steps per tick, one per heap")
    }

    /// The benchmark's load in the keeper alone: every lease renewed every TTL/3, staggered.
    @Test("100,000 leases kept alive at TTL/3: no checkpoint after the election's first, O(log n) work per renewal")
    func keptAliveLeasesCostWhatChanges() {
        var keeper = keeper()
        let count: UInt64 = 100_000, ttl: UInt64 = 12_000, renewEvery: UInt64 = 4_000
        let leases = (1...count).map { Self.lease($0, remainingMillis: ttl) }
        keeper.startLeading(term: 2, nowMillis: 0, leases: leases)
        var epochs = [UInt64](repeating: 0, count: Int(count) + 1)
        var renewals = 0, checkpointsAfterFirst = 0
        let ticksPerRenewal = renewEvery / Self.tickMillis
        let start = keeper.heapSteps
        for tick in 1...(20_000 / Self.tickMillis) {
            let now = tick * Self.tickMillis
            // The leases whose turn it is this tick (id mod ticksPerRenewal).
            var events: [KVEvent] = []
            for id in stride(from: tick % ticksPerRenewal + 1, through: count, by: Int(ticksPerRenewal)) {
                epochs[Int(id)] += 1
                events.append(.leaseRenewed(leaseID: id, epoch: epochs[Int(id)], ttlMillis: ttl))
            }
            renewals += events.count
            keeper.observe(events, nowMillis: now)
            let checkpoints = checkpointed(keeper.dueCheckpoints(nowMillis: now))
            if now > 2_000 { checkpointsAfterFirst += checkpoints.count }
            #expect(keeper.dueExpiries(nowMillis: now).isEmpty)
        }
        #expect(checkpointsAfterFirst == 0)
        let stepsPerRenewal = Double(keeper.heapSteps - start) / Double(renewals)
        // Per renewal: two pushes of the latest times (a step or two each), and the two nodes they
        // supersede popped when they surface (at most log2(n) + 1 ≈ 18 steps each), plus the
        // election's first checkpoints spread over the renewals. A rebuild, or any work per
        // lease per tick, would show as far more.
        #expect(stepsPerRenewal < 3 * 17, "\(stepsPerRenewal) heap steps per renewal")
        print("keptAliveLeasesCostWhatChanges: \(renewals) renewals, \(stepsPerRenewal) heap steps per renewal")
    }
}
