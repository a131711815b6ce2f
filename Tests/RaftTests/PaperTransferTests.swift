import Testing

@testable import RaftCore

/// Leadership transfer (thesis §3.10).
@Suite struct PaperTransferTests {
    /// Thesis §3.10: the leader first brings the target's log up to date, and only then sends
    /// TimeoutNow; the target wins at once in the next term, even though the other voters are
    /// inside their leader lease.
    @Test func thesis3_10_catchUpThenTimeoutNow() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        // Messages to n3 are delayed, so it falls behind.
        for text in ["a", "b", "c"] { cluster.propose(n1, text) }
        cluster.deliverAll(holding: { $0.to == n3 })
        #expect(cluster.lastIndex(n3) < cluster.lastIndex(n1))
        let term = cluster[n1].currentTerm
        try cluster[n1].transferLeadership(to: n3)
        #expect(cluster[n1].status.transferTarget == n3)
        cluster.drain(n1)
        #expect(!cluster.queue.contains { $0.isTimeoutNow }, "the target is behind: no TimeoutNow yet")
        let last = cluster.lastIndex(n1)
        cluster.deliverAll()
        let caughtUp = try #require(
            cluster.delivered.firstIndex { $0.from == n3 && $0.to == n1 && $0.appendResponse?.matchIndex == last })
        let timeoutNow = try #require(cluster.delivered.firstIndex { $0.isTimeoutNow })
        #expect(caughtUp < timeoutNow, "TimeoutNow only after the target acknowledged the whole log")
        #expect(cluster.delivered.filter(\.isTimeoutNow).count == 1)
        #expect(cluster.leaders == [n3])
        #expect(cluster[n3].currentTerm == term.next)
        #expect(cluster[n1].roleName == .follower)
    }

    /// Thesis §3.10: while a transfer is under way the leader refuses new proposals and
    /// membership changes (they would keep the target behind).
    @Test func thesis3_10_proposalsRefusedDuringTransfer() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n3)
        try cluster[n1].transferLeadership(to: n3)
        #expect(throws: ProposalError.leadershipTransferInProgress(target: n3)) { try cluster[n1].propose(bytes("x")) }
        #expect(throws: ProposalError.leadershipTransferInProgress(target: n3)) {
            try cluster[n1].proposeMembershipChange(.addLearner(n4))
        }
    }

    /// Thesis §3.10: a transfer that does not complete within an election timeout is aborted
    /// and the leader accepts proposals again.
    @Test func thesis3_10_transferAbortsAfterElectionTimeout() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n3)
        try cluster[n1].transferLeadership(to: n3)
        cluster.tick(9)
        #expect(cluster[n1].status.transferTarget == n3)
        cluster.tick(1)
        #expect(cluster[n1].status.transferTarget == nil)
        #expect(cluster[n1].isLeader)
        let receipt = cluster.propose(n1, "after abort")
        cluster.deliverAll()
        #expect(cluster.commitIndex(n1) == receipt?.index)
    }

    /// Thesis §3.10: only a voter can be the target, only a leader transfers, and transferring
    /// to oneself does nothing.
    @Test func thesis3_10_transferPreconditions() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3], learners: [n4])
        leader.becomeLeaderForTest()
        #expect(throws: ProposalError.self) { try leader.transferLeadership(to: n4) }
        #expect(throws: ProposalError.self) { try leader.transferLeadership(to: n9) }
        try leader.transferLeadership(to: n1)
        #expect(leader.status.transferTarget == nil)
        var follower = makeNode(n2, voters: [n1, n2, n3])
        #expect(throws: ProposalError.notLeader(leaderHint: nil)) { try follower.transferLeadership(to: n3) }
    }

    /// Thesis §3.10: TimeoutNow makes a voter campaign at once, skipping PreVote, with an
    /// election marked as a transfer; a learner ignores it.
    @Test func thesis3_10_timeoutNowStartsElectionAtOnce() {
        var voter = makeNode(n2, voters: [n1, n2, n3])
        voter.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        voter.drainMessages()
        voter.deliver(Message(from: n1, to: n2, term: 1, body: .timeoutNow))
        #expect(voter.roleName == .candidate)
        #expect(voter.currentTerm == 2)
        let requests = voter.drainMessages().compactMap(\.requestVote)
        #expect(requests.count == 2)
        #expect(requests.allSatisfy { $0.isLeadershipTransfer && !$0.isPreVote })

        var learner = makeNode(n4, voters: [n1, n2, n3], learners: [n4])
        learner.deliver(Message(from: n1, to: n4, term: 1, body: .timeoutNow))
        #expect(learner.roleName == .follower)
        #expect(learner.currentTerm == 1)
    }

    /// Thesis §3.10 (a leader stepping down hands over first): the target is the most caught-up
    /// voter heard from within an election timeout, never one that has gone silent (the stop
    /// would only wait out a transfer to a dead node); none if every other voter is silent.
    @Test func thesis3_10_handOverTargetIsALiveVoter() {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5])
        cluster.elect(n1)
        cluster.propose(n1, "a")
        cluster.deliverAll()
        #expect(cluster[n1].bestTransferTarget == n2, "all caught up: the lowest id")
        // n2 goes silent: after an election timeout without a word from it, n3 is chosen.
        cluster.cut(n1, n2)
        cluster.tick(cluster[n1].configuration.electionTimeoutTicks + 1)
        #expect(cluster[n1].status.role == .leader)
        #expect(cluster[n1].bestTransferTarget == n3)
        // n3's connection ends: it is passed over at once, until it answers again.
        cluster[n1].peerUnreachable(n3)
        #expect(cluster[n1].bestTransferTarget == n4)
        cluster.propose(n1, "b")
        cluster.deliverAll()
        #expect(cluster[n1].bestTransferTarget == n3, "n3 answered again")
        for other in [n3, n4, n5] { cluster.cut(n1, other) }
        cluster.tick(n1, cluster[n1].configuration.electionTimeoutTicks / 2)
        if cluster[n1].status.role == .leader {
            cluster.tick(n1, cluster[n1].configuration.electionTimeoutTicks / 2 + 1)
        }
        #expect(cluster[n1].bestTransferTarget == nil, "no voter heard from (or no longer leading)")
    }
}
