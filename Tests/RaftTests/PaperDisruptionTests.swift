import Testing

@testable import RaftCore

/// Disruptive servers: PreVote (thesis §9.6), CheckQuorum (thesis §6.2) and the leader lease
/// that makes voters ignore RequestVote while they hear from a leader (thesis §4.2.3).
@Suite struct PaperDisruptionTests {
    /// Thesis §9.6: a pre-candidate asks for pre-votes in the term it would use, without
    /// changing its own term or vote, and becomes a real candidate only after a majority grants.
    @Test func thesis9_6_preCandidateKeepsItsTermUntilMajority() {
        var node = makeNode(n1, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 4)))
        node.campaign()
        #expect(node.roleName == .preCandidate)
        #expect(node.currentTerm == 4)
        #expect(node.status.votedFor == nil)
        let requests = node.drainMessages()
        #expect(requests.count == 2)
        #expect(requests.allSatisfy { $0.term == 5 && $0.requestVote?.isPreVote == true })
        node.deliver(.voteResponse(from: n2, to: n1, term: 5, granted: true, preVote: true))
        #expect(node.roleName == .candidate)
        #expect(node.currentTerm == 5)
        #expect(node.status.votedFor == n1)
        #expect(node.drainMessages().allSatisfy { $0.requestVote?.isPreVote == false })
    }

    /// Thesis §9.6: a pre-vote is granted only to a candidate whose log is up to date (§5.4.1),
    /// and answering it changes neither the voter's term nor its vote.
    @Test(arguments: [(3, 2, true), (2, 2, false), (9, 1, false)] as [(UInt64, UInt64, Bool)])
    func thesis9_6_preVoteChangesNoStateOnTheVoter(lastIndex: UInt64, lastTerm: UInt64, granted: Bool) {
        var voter = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 2), entries: logWithTerms([1, 1, 2])))
        voter.deliver(.requestVote(from: n1, to: n2, term: 3, lastIndex: lastIndex, lastTerm: lastTerm, preVote: true))
        #expect(voter.currentTerm == 2)
        #expect(voter.status.votedFor == nil)
        let ready = voter.cycle()
        #expect(ready.hardState == nil, "a pre-vote persists nothing")
        let answer = ready.messages.first
        #expect(ready.messages.count == 1)
        #expect(answer?.voteResponse == RequestVoteResponse(voteGranted: granted, isPreVote: true))
        #expect(answer?.term == (granted ? 3 : 2))
    }

    /// Thesis §9.6 in a cluster: a partitioned server keeps pre-campaigning without raising its
    /// term, so when it returns the leader is undisturbed. Without PreVote the same server
    /// returns with an inflated term and deposes the leader (the behaviour PreVote exists to stop).
    @Test(arguments: [true, false])
    func thesis9_6_partitionedServerDoesNotDisruptOnReturn(preVote: Bool) {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.preVote = preVote }
        cluster.elect(n1)
        let term = cluster[n1].currentTerm
        cluster.isolate(n3)
        cluster.tick(60)
        #expect(cluster.leaders == [n1])
        if preVote {
            #expect(cluster[n3].currentTerm == term)
        } else {
            #expect(cluster[n3].currentTerm > term.next)
        }
        cluster.heal()
        cluster.tick(1)
        if preVote {
            #expect(cluster[n1].isLeader)
            #expect(cluster[n1].currentTerm == term)
        } else {
            #expect(!cluster[n1].isLeader, "a higher-term reply deposes the leader")
        }
    }

    /// Thesis §6.2, judged at every tick: a leader cut off in the middle of a CheckQuorum round
    /// steps down exactly one election timeout after it last heard from a quorum, not at the end
    /// of the next whole round (up to twice as late), so its clients learn sooner.
    @Test func thesis6_2_checkQuorumCountsFromTheLastAnswer() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.tick(4)
        cluster.isolate(n1)
        let timeout = cluster[n1].configuration.electionTimeoutTicks
        cluster.tick(n1, timeout - 1)
        #expect(cluster[n1].isLeader)
        cluster.tick(n1, 1)
        #expect(!cluster[n1].isLeader)
    }

    /// Thesis §6.2: with CheckQuorum a leader that has not heard from a majority within an
    /// election timeout steps down (so clients can find the real leader); without it, it does not.
    @Test(arguments: [true, false])
    func thesis6_2_checkQuorumLeaderStepsDownWhenIsolated(checkQuorum: Bool) {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.checkQuorum = checkQuorum }
        cluster.elect(n1)
        cluster.isolate(n1)
        cluster.tick(n1, 9)
        #expect(cluster[n1].isLeader, "one round of CheckQuorum may still count answers from before the partition")
        cluster.tick(n1, 11)
        #expect(cluster[n1].isLeader == !checkQuorum)
    }

    /// Thesis §6.2: a leader that still hears from a majority keeps leading, whatever a minority does.
    @Test func thesis6_2_leaderWithQuorumStays() {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5])
        cluster.elect(n1)
        let term = cluster[n1].currentTerm
        cluster.isolate(n4)
        cluster.isolate(n5)
        cluster.tick(100)
        #expect(cluster.leaders == [n1])
        #expect(cluster[n1].currentTerm == term)
    }

    /// Thesis §4.2.3: a follower that heard from its leader within the minimum election timeout
    /// ignores RequestVote (no reply, no term change); once the lease lapses it answers; a vote
    /// for a leadership transfer is the deliberate exception.
    @Test func thesis4_2_3_leaseMakesVotersIgnoreRequestVote() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        follower.drainMessages()
        follower.deliver(.requestVote(from: n3, to: n2, term: 2, lastIndex: 5, lastTerm: 1))
        #expect(follower.currentTerm == 1)
        #expect(follower.drainMessages().isEmpty)
        // A transfer's election is honoured inside the lease.
        follower.deliver(.requestVote(from: n3, to: n2, term: 2, lastIndex: 5, lastTerm: 1, transfer: true))
        #expect(follower.currentTerm == 2)
        #expect(follower.status.votedFor == n3)

        var lapsed = makeNode(n2, voters: [n1, n2, n3])
        lapsed.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        lapsed.drainMessages()
        lapsed.tick(times: 10)  // The lease is the minimum election timeout.
        lapsed.deliver(.requestVote(from: n3, to: n2, term: 2, lastIndex: 5, lastTerm: 1))
        #expect(lapsed.currentTerm == 2)
        #expect(lapsed.drainMessages().first?.voteResponse?.voteGranted == true)
    }

    /// Thesis §4.2.3 for a learner: its lease also ends an election timeout after it last heard
    /// from the leader, though its own timer (which never makes it campaign) fires in between. A
    /// learner promoted by an entry it has not received yet still thinks it is one, and the
    /// voters that count it must get its vote: in a two-voter cluster nothing commits without it.
    @Test func thesis4_2_3_learnerLeaseEndsWithoutWordFromTheLeader() {
        var learner = makeNode(n2, voters: [n1], learners: [n2])
        learner.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        learner.drainMessages()
        // Just past its randomized timeout: a timer that restarted there would be at 1 tick.
        learner.tick(times: learner.randomizedElectionTimeout + 1)
        #expect(learner.roleName == .follower)
        learner.deliver(.requestVote(from: n1, to: n2, term: 2, lastIndex: 2, lastTerm: 1, preVote: true))
        #expect(learner.drainMessages().first?.voteResponse == RequestVoteResponse(voteGranted: true, isPreVote: true))
    }

    /// Thesis §4.2.3: a server removed from the cluster (and so no longer sent heartbeats) times
    /// out and campaigns with ever higher terms; the leader and its followers ignore it.
    @Test func thesis4_2_3_removedServerCannotDisruptCluster() {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.preVote = false }
        cluster.elect(n1)
        cluster.isolate(n3)
        _ = try? cluster[n1].proposeMembershipChange(.remove(n3))
        cluster.deliverAll()
        cluster.tick(2)
        #expect(cluster[n1].status.membership.voters == [n1, n2])
        #expect(cluster[n3].status.membership.voters == [n1, n2, n3], "n3 never learned it was removed")
        let term = cluster[n1].currentTerm
        cluster.heal()
        cluster.tick(100)
        #expect(cluster[n3].currentTerm > term, "the removed server kept campaigning")
        #expect(cluster.leaders.first == n1)
        #expect(cluster[n1].currentTerm == term)
        #expect(cluster[n2].currentTerm == term)
    }
}
