import Testing

@testable import RaftCore

/// Membership changes one server at a time with learners (thesis §4.1, §4.2.1, §4.2.2).
@Suite struct PaperMembershipTests {
    /// Thesis §4.2.1: a new server joins as a learner, receives the whole log and applies it,
    /// but never campaigns.
    @Test func thesis4_2_1_learnerCatchesUpWithoutCampaigning() throws {
        var cluster = Cluster(voters: [n1, n2, n3], extra: [n4])
        cluster.elect(n1)
        for text in ["a", "b"] { cluster.propose(n1, text) }
        cluster.deliverAll()
        _ = try cluster[n1].proposeMembershipChange(.addLearner(n4))
        cluster.deliverAll()
        cluster.tick(3)
        #expect(cluster[n1].status.membership == ClusterMembership(voters: [n1, n2, n3], learners: [n4]))
        #expect(cluster[n4].entries == cluster[n1].entries)
        #expect(cluster.appliedCommands(n4) == ["a", "b"])
        // A learner whose leader disappears does not campaign.
        cluster.isolate(n4)
        cluster.tick(100)
        #expect(cluster[n4].roleName == .follower)
        #expect(cluster[n4].currentTerm == cluster[n1].currentTerm)
    }

    /// Thesis §4.2.1: learners do not count towards commitment.
    @Test func thesis4_2_1_learnersDoNotCountForCommit() {
        var cluster = Cluster(voters: [n1, n2], learners: [n3])
        cluster.elect(n1)
        #expect(cluster.commitIndex(n1) == 1)
        cluster.cut(n1, n2)
        let receipt = cluster.propose(n1, "a")
        cluster.deliverAll()
        #expect(cluster.lastIndex(n3) == receipt?.index, "the learner holds the entry")
        #expect(cluster.commitIndex(n1) == 1, "a voter and a learner are not a majority of two voters")
        // The lost AppendEntries is resent once the leader sees n2's pipeline stalled (an
        // election timeout); then the two voters commit.
        cluster.heal()
        cluster.tick(12)
        #expect(cluster.commitIndex(n1) == 2)
    }

    /// Thesis §4.2.1: learners are not asked for votes and a learner's vote does not count.
    @Test func thesis4_2_1_learnersDoNotVote() {
        var node = makeNode(n1, voters: [n1, n2, n3], learners: [n4, n5]) { $0.preVote = false }
        node.campaign()
        let requests = node.drainMessages()
        #expect(Set(requests.map(\.to)) == [n2, n3])
        node.deliver(.voteResponse(from: n4, to: n1, term: 1, granted: true))
        node.deliver(.voteResponse(from: n5, to: n1, term: 1, granted: true))
        #expect(node.roleName == .candidate)
        node.deliver(.voteResponse(from: n2, to: n1, term: 1, granted: true))
        #expect(node.isLeader)
    }

    /// Thesis §4.1: at most one membership change is uncommitted at a time.
    @Test func thesis4_1_atMostOneUncommittedChange() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let first = try leader.proposeMembershipChange(.addLearner(n4))
        #expect(throws: ProposalError.membershipChangePending) { try leader.proposeMembershipChange(.addLearner(n5)) }
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: first.index))
        #expect(leader.log.committed == first.index)
        _ = try leader.proposeMembershipChange(.addLearner(n5))
        #expect(leader.status.membership.learners == [n4, n5])
    }

    /// Thesis §4.1 (the single-server-change fix): a new leader makes no membership change
    /// before the no-op of its term commits.
    @Test func thesis4_1_noChangeBeforeNoopCommits() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3])
        leader.becomeLeaderForTest()
        #expect(throws: ProposalError.membershipChangePending) { try leader.proposeMembershipChange(.addLearner(n4)) }
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        _ = try leader.proposeMembershipChange(.addLearner(n4))
    }

    /// Thesis §4.1: a membership takes effect on each server as soon as its entry is in that
    /// server's log, committed or not, and is undone if the entry is truncated.
    @Test func thesis4_1_membershipTakesEffectOnAppend() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        let added = ClusterMembership(voters: [n1, n2, n3], learners: [n4])
        let change = Entry(term: 1, index: 2, payload: .membership(added))
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0, entries: [entry(1, term: 1), change]))
        #expect(follower.log.committed == 0)
        #expect(follower.status.membership == added)
        // A leader of term 2 overwrites index 2: the old membership is back.
        follower.deliver(.append(from: n3, to: n2, term: 2, prevIndex: 1, prevTerm: 1, entries: [entry(2, term: 2)]))
        #expect(follower.status.membership == ClusterMembership(voters: [n1, n2, n3]))
    }

    /// Thesis §4.2.1: a learner far behind is not promoted; once caught up it is, and then it
    /// counts for commitment at once (the new membership is in force from its append).
    @Test func thesis4_2_1_promotionRequiresCatchUp() throws {
        var cluster = Cluster(voters: [n1, n2], extra: [n3]) { $0.entriesPerAppendMax = 2 }
        cluster.elect(n1)
        cluster.isolate(n3)
        _ = try cluster[n1].proposeMembershipChange(.addLearner(n3))
        for index in 0..<5 { cluster.propose(n1, "e\(index)") }
        cluster.deliverAll()
        #expect(throws: ProposalError.learnerNotCaughtUp(n3)) { try cluster[n1].proposeMembershipChange(.promote(n3)) }
        cluster.heal()
        cluster.tick(20)
        #expect(cluster[n3].entries == cluster[n1].entries)
        _ = try cluster[n1].proposeMembershipChange(.promote(n3))
        #expect(cluster[n1].status.membership.voters == [n1, n2, n3])
        cluster.deliverAll()
        // Now {n1, n3} is a majority of three voters without n2.
        cluster.cut(n1, n2)
        let receipt = cluster.propose(n1, "after")
        cluster.deliverAll()
        #expect(cluster.commitIndex(n1) == receipt?.index)
    }

    /// Thesis §4.2.2: asking the leader to remove itself makes it transfer leadership first; the
    /// removal is then made by the new leader and the cluster carries on without it.
    @Test func thesis4_2_2_removingTheLeaderTransfersLeadershipFirst() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        var refusal: ProposalError?
        do { _ = try cluster[n1].proposeMembershipChange(.remove(n1)) } catch { refusal = error }
        // Both followers are equally up to date; the lowest id is chosen.
        #expect(refusal == .leadershipTransferInProgress(target: n2))
        #expect(cluster[n1].status.membership.voters == [n1, n2, n3], "nothing was appended")
        cluster.deliverAll()
        #expect(cluster.leaders == [n2])
        cluster.tick(1)
        _ = try cluster[n2].proposeMembershipChange(.remove(n1))
        cluster.deliverAll()
        cluster.tick(1)
        #expect(cluster[n2].status.membership.voters == [n2, n3])
        #expect(cluster[n3].status.membership.voters == [n2, n3])
        let receipt = cluster.propose(n2, "without n1")
        cluster.deliverAll()
        #expect(cluster.commitIndex(n2) == receipt?.index)
        cluster.tick(60)
        #expect(cluster.leaders == [n2], "the removed n1 does not disrupt the remaining voters")
    }

    /// Thesis §4.1: changes that make no sense for the current membership are refused and append nothing.
    @Test func thesis4_1_invalidChangesRefused() {
        var leader = PaperReplicationTests.steadyLeader()
        let last = leader.log.lastIndex
        #expect(throws: ProposalError.self) { try leader.proposeMembershipChange(.addLearner(n2)) }
        #expect(throws: ProposalError.self) { try leader.proposeMembershipChange(.promote(n2)) }
        #expect(throws: ProposalError.self) { try leader.proposeMembershipChange(.remove(n9)) }
        #expect(leader.log.lastIndex == last)
        var follower = makeNode(n2, voters: [n1, n2, n3])
        #expect(throws: ProposalError.notLeader(leaderHint: nil)) { try follower.proposeMembershipChange(.addLearner(n4)) }
    }
}

let n9: NodeID = 9
