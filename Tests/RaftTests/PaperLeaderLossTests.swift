import Testing

@testable import RaftCore

/// Failover on the driver's evidence that the leader is gone (`peerUnreachable`): the remaining
/// voters campaign in id order at once instead of after an election timeout, and a false alarm
/// never deposes a live leader, because a follower that still hears from it keeps its lease
/// (thesis §4.2.3) and refuses the pre-vote (thesis §9.6).
@Suite struct PaperLeaderLossTests {
    /// The dead leader's followers both learn of it; the first remaining voter in id order wins
    /// without any election timeout passing, in the next term, with no split vote.
    @Test func firstRemainingVoterWinsAtOnceWhenEveryoneSeesTheLoss() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let term = cluster[n1].currentTerm
        cluster.isolate(n1)
        cluster[n3].peerUnreachable(n1)
        cluster[n2].peerUnreachable(n1)
        cluster.deliverAll()
        #expect(cluster[n2].isLeader)
        #expect(cluster[n2].currentTerm == term.next)
        #expect(cluster[n3].status.leaderID == n2)
    }

    /// The second voter in order does not campaign at once: it waits its stagger, so when the
    /// first cannot win (here: it never heard of the loss and would refuse) the second takes
    /// over after `leaderLossStaggerTicks`, still long before an election timeout.
    @Test func laterVotersCampaignAfterTheirStagger() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n1)
        cluster[n3].peerUnreachable(n1)
        cluster.deliverAll()
        #expect(cluster[n3].roleName == .follower, "n3 is second in line and waits")
        #expect(cluster[n3].status.leaderID == nil, "it forgot the leader, so it grants pre-votes")
        let stagger = cluster[n3].configuration.leaderLossStaggerTicks
        cluster.tick(n3, stagger - 1)
        #expect(cluster[n3].roleName == .follower)
        cluster.tick(n3, 1)
        #expect(cluster[n3].roleName == .preCandidate)
    }

    /// A false alarm (the leader is alive, only one follower's connection to it broke): the
    /// follower's pre-vote is refused by the other follower, which still hears the leader, and
    /// the leader keeps its term and its leadership.
    @Test func falseAlarmDoesNotDisruptALiveLeader() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let term = cluster[n1].currentTerm
        cluster.cut(n1, n2)
        cluster[n2].peerUnreachable(n1)
        cluster.deliverAll()
        #expect(cluster[n2].roleName != .leader)
        #expect(cluster[n2].currentTerm == term, "a refused pre-vote raises no term")
        cluster.heal()
        cluster.tick(3)
        #expect(cluster.leaders == [n1])
        #expect(cluster[n1].currentTerm == term)
        #expect(cluster[n2].status.leaderID == n1, "the next heartbeat restores the leader")
    }

    /// Evidence about a node that is not this follower's leader, or arriving at a leader or a
    /// candidate, changes nothing.
    @Test func evidenceAboutANonLeaderIsIgnored() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster[n2].peerUnreachable(n3)
        #expect(cluster[n2].status.leaderID == n1)
        #expect(cluster[n2].roleName == .follower)
        cluster[n1].peerUnreachable(n2)
        #expect(cluster[n1].isLeader)
    }

    /// A learner forgets the lost leader but never campaigns.
    @Test func learnerNeverCampaigns() {
        var cluster = Cluster(voters: [n1, n2, n3], learners: [n4])
        cluster.elect(n1)
        cluster.isolate(n1)
        cluster[n4].peerUnreachable(n1)
        cluster.deliverAll()
        #expect(cluster[n4].roleName == .follower)
        #expect(cluster[n4].currentTerm == cluster[n2].currentTerm)
    }

    /// In a five-node cluster every follower learns of the loss at once: exactly one leader comes
    /// out, in the very next term.
    @Test func fiveNodesElectOneLeaderInTheNextTerm() {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5])
        cluster.elect(n3)
        let term = cluster[n3].currentTerm
        cluster.isolate(n3)
        for id in [n5, n4, n2, n1] { cluster[id].peerUnreachable(n3) }
        cluster.deliverAll()
        #expect(cluster.leaders.filter { $0 != n3 } == [n1])
        #expect(cluster[n1].currentTerm == term.next)
    }

    @Test func staggerMustBePositive() {
        var configuration = RaftConfiguration(id: n1)
        configuration.leaderLossStaggerTicks = 0
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }
}

/// Weaker evidence (`peerStalled`: the leader's connection is open but nothing comes back): the
/// follower keeps its lease, then campaigns the moment the lease ends instead of at its
/// randomized timeout; hearing from the leader withdraws the suspicion.
@Suite struct PaperLeaderStallTests {
    @Test func stalledLeaderIsReplacedWhenTheLeaseEndsNotAtTheRandomTimeout() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n1)
        cluster[n2].peerStalled(n1)
        cluster[n3].peerStalled(n1)
        #expect(cluster[n2].status.leaderID == n1, "the lease still holds")
        let timeout = cluster[n2].configuration.electionTimeoutTicks
        for _ in 0..<(timeout - 1) {
            cluster[n2].tick()
            cluster[n3].tick()
        }
        cluster.deliverAll()
        #expect(cluster[n2].roleName == .follower)
        cluster[n2].tick()
        cluster[n3].tick()
        cluster.deliverAll()
        #expect(cluster[n2].isLeader, "n2 is first in line and campaigned as its lease ended")
    }

    @Test func hearingFromTheLeaderWithdrawsTheSuspicion() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let term = cluster[n1].currentTerm
        cluster[n2].peerStalled(n1)
        cluster.tick(2 * cluster[n1].configuration.electionTimeoutTicks)
        #expect(cluster.leaders == [n1])
        #expect(cluster[n1].currentTerm == term)
        #expect(cluster[n2].stalledLeader == nil)
    }

    @Test func aFollowerOutOfLeaseCampaignsAtOnce() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n1)
        let timeout = cluster[n2].configuration.electionTimeoutTicks
        // Ticks without the randomized timer firing: at least `timeout` of them are allowed.
        for _ in 0..<timeout { cluster[n2].electionElapsed += 1 }
        cluster[n2].peerStalled(n1)
        #expect(cluster[n2].roleName == .preCandidate)
    }
}
