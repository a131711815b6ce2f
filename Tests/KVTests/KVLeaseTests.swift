import KVStore
import RaftCore
import Testing

/// Leases: granted, renewed and revoked through the log; ended by time only through a
/// leader-proposed expiry carrying the leader's term and the lease's renewal epoch.
@Suite struct KVLeaseTests {
    @Test func grantRefusesTTLBelowTheMinimum() throws {
        var limits = KVLimits()
        limits.leaseTTLMillisMin = 1000
        let kv = try KVFixture(limits: limits)
        #expect(try kv.apply(.leaseGrant(ttlMillis: 999)) == .error(.ttlTooShort(minimumMillis: 1000)))
        #expect(try kv.apply(.leaseGrant(ttlMillis: 1000)) == .leaseGranted(leaseID: 2, ttlMillis: 1000))
    }

    @Test func keysAttachedToALeaseVanishWithItInOneApply() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        _ = try kv.put("session/a", "1", lease: lease)
        _ = try kv.put("plain", "1")
        #expect(try kv.machine.keys(attachedTo: lease) == [bytes("session/a")])
        #expect(try kv.apply(.leaseRevoke(leaseID: lease)) == .leaseRevoked)
        #expect(try kv.value("session/a") == nil)
        #expect(try kv.value("plain") == "1")
        #expect(try kv.apply(.leaseRevoke(leaseID: lease)) == .error(.leaseNotFound(lease)))
    }

    @Test func putWithAnUnknownLeaseIsRefused() throws {
        let kv = try KVFixture()
        #expect(try kv.put("k", "v", lease: 99) == .error(.leaseNotFound(99)))
        #expect(try kv.value("k") == nil)
    }

    @Test func expiryForAnOlderEpochIsIgnored() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        _ = try kv.apply(.leaseKeepAlive(leaseID: lease))  // epoch 0 -> 1
        _ = try kv.apply(.leaseExpire(leaseID: lease, leaderTerm: 1, epoch: 0))
        #expect(try kv.machine.lease(lease) != nil, "a renewal after the expiry was decided must win")
        _ = try kv.apply(.leaseExpire(leaseID: lease, leaderTerm: 1, epoch: 1))
        #expect(try kv.machine.lease(lease) == nil)
        #expect(kv.events.contains(.leaseEnded(leaseID: lease, expired: true)))
    }

    @Test func expiryFromADeposedLeaderIsIgnored() throws {
        // etcd #12528: a stale leader must not revoke leases a newer leader keeps alive.
        let kv = try KVFixture()
        let lease = try kv.grantLease()
        try kv.newLeaderTerm()  // term 2's no-op applies first
        _ = try kv.apply(.leaseExpire(leaseID: lease, leaderTerm: 1, epoch: 0))
        #expect(try kv.machine.lease(lease) != nil)
        _ = try kv.apply(.leaseExpire(leaseID: lease, leaderTerm: 2, epoch: 0))
        #expect(try kv.machine.lease(lease) == nil)
    }

    @Test func checkpointOnlyLowersRemainingAndRenewalRestoresIt() throws {
        let kv = try KVFixture()
        let lease = try kv.grantLease(ttlMillis: 10_000)
        _ = try kv.apply(.leaseCheckpoint(leaderTerm: 1, checkpoints: [LeaseCheckpoint(leaseID: lease, epoch: 0, remainingMillis: 4_000)]))
        #expect(try kv.machine.lease(lease)?.remainingMillis == 4_000)
        _ = try kv.apply(.leaseCheckpoint(leaderTerm: 1, checkpoints: [LeaseCheckpoint(leaseID: lease, epoch: 0, remainingMillis: 9_000)]))
        #expect(try kv.machine.lease(lease)?.remainingMillis == 4_000)
        _ = try kv.apply(.leaseKeepAlive(leaseID: lease))
        #expect(try kv.machine.lease(lease)?.remainingMillis == 10_000)
        // A checkpoint computed for the old epoch cannot shorten the renewed lease.
        _ = try kv.apply(.leaseCheckpoint(leaderTerm: 1, checkpoints: [LeaseCheckpoint(leaseID: lease, epoch: 0, remainingMillis: 1)]))
        #expect(try kv.machine.lease(lease)?.remainingMillis == 10_000)
    }
}

/// The leader side of leases across failovers (etcd #9888).
@Suite struct LeaseKeeperTests {
    func keeper() -> LeaseKeeper { LeaseKeeper(checkpointIntervalMillis: 500, retryMillis: 1_000) }

    @Test func noExpiryBeforeLeadingStarts() throws {
        var keeper = keeper()
        keeper.observe([.leaseGranted(leaseID: 1, ttlMillis: 1_000)], nowMillis: 0)
        let due1 = keeper.dueExpiries(nowMillis: 10_000)
        #expect(due1.isEmpty)
    }

    @Test func newLeaderNeverExpiresALeaseEarly() throws {
        // Old leader granted a 5 s lease at t=0 and checkpointed 3 s left at t=2 s. The new
        // leader's no-op applies at t=2.7 s: the lease must live at least until 2.7 + 3 s.
        let kv = try KVFixture()
        let lease = try kv.grantLease(ttlMillis: 5_000)
        _ = try kv.apply(.leaseCheckpoint(leaderTerm: 1, checkpoints: [LeaseCheckpoint(leaseID: lease, epoch: 0, remainingMillis: 3_000)]))
        try kv.newLeaderTerm()
        var keeper = keeper()
        keeper.startLeading(term: 2, nowMillis: 2_700, leases: try kv.machine.allLeases())
        let due2 = keeper.dueExpiries(nowMillis: 5_699)
        #expect(due2.isEmpty)
        let due3 = keeper.dueExpiries(nowMillis: 5_700)
        #expect(due3 == [.leaseExpire(leaseID: lease, leaderTerm: 2, epoch: 0)])
    }

    @Test func repeatedElectionsDoNotRenewALeaseForever() throws {
        // Each leader lives one checkpoint interval and then fails over. Because remaining TTL is
        // checkpointed through the log, the lease still runs out.
        let kv = try KVFixture()
        let lease = try kv.grantLease(ttlMillis: 3_000)
        var now: UInt64 = 0
        var expired = false
        for term in 2...40 where !expired {
            try kv.newLeaderTerm()
            var keeper = keeper()
            keeper.startLeading(term: Term(UInt64(term)), nowMillis: now, leases: try kv.machine.allLeases())
            now += 600
            for operation in keeper.dueCheckpoints(nowMillis: now) + keeper.dueExpiries(nowMillis: now) {
                _ = try kv.apply(operation)
            }
            expired = try kv.machine.lease(lease) == nil
        }
        #expect(expired, "a lease with TTL 3 s survived 39 elections")
        #expect(now <= 3_000 + 2 * 600, "expired later than TTL plus one checkpoint interval and a failover")
    }

    @Test func expiryIsProposedOnceThenRetriedAfterTheRetryDelay() throws {
        var keeper = keeper()
        keeper.startLeading(term: 3, nowMillis: 0, leases: [])
        keeper.observe([.leaseGranted(leaseID: 7, ttlMillis: 1_000)], nowMillis: 0)
        let due4 = keeper.dueExpiries(nowMillis: 999)
        #expect(due4.isEmpty)
        let due5 = keeper.dueExpiries(nowMillis: 1_000)
        #expect(due5.count == 1)
        let due6 = keeper.dueExpiries(nowMillis: 1_500)
        #expect(due6.isEmpty)
        let due7 = keeper.dueExpiries(nowMillis: 2_000)
        #expect(due7.count == 1)
        keeper.observe([.leaseEnded(leaseID: 7, expired: true)], nowMillis: 2_001)
        let due8 = keeper.dueExpiries(nowMillis: 9_000)
        #expect(due8.isEmpty)
    }

    @Test func renewalRestartsTheDeadlineWithTheNewEpoch() throws {
        var keeper = keeper()
        keeper.startLeading(term: 1, nowMillis: 0, leases: [])
        keeper.observe([.leaseGranted(leaseID: 7, ttlMillis: 1_000)], nowMillis: 0)
        keeper.observe([.leaseRenewed(leaseID: 7, epoch: 1, ttlMillis: 1_000)], nowMillis: 800)
        let due9 = keeper.dueExpiries(nowMillis: 1_700)
        #expect(due9.isEmpty)
        #expect(keeper.remainingMillis(7, nowMillis: 1_700) == 100)
        let due10 = keeper.dueExpiries(nowMillis: 1_800)
        #expect(due10 == [.leaseExpire(leaseID: 7, leaderTerm: 1, epoch: 1)])
        keeper.stopLeading()
        #expect(keeper.remainingMillis(7, nowMillis: 1_800) == nil)
    }
}
