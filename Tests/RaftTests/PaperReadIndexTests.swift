import Testing

@testable import RaftCore

/// Linearizable reads without log writes: ReadIndex (thesis §6.4).
@Suite struct PaperReadIndexTests {
    static func readID(_ origin: NodeID, _ sequence: UInt64) -> ReadRequestID {
        ReadRequestID(origin: origin, sequence: sequence)
    }

    /// Thesis §6.4 step 1: a new leader serves no read until the no-op of its term has
    /// committed, even after a quorum confirmed its leadership.
    @Test func thesis6_4_readWaitsForTheNoop() {
        var leader = makeNode(n1, voters: [n1, n2, n3])
        leader.becomeLeaderForTest()
        leader.requestRead(Self.readID(n1, 1))
        let ready = leader.cycle()
        #expect(ready.readStates.isEmpty)
        let round = ready.allMessages.compactMap { $0.appendEntries?.round }.max()
        #expect(round != nil, "the read started a heartbeat round")
        // Both followers answer the round, but neither has stored the no-op yet.
        for peer in [n2, n3] {
            leader.deliver(.appendResponse(from: peer, to: n1, term: 1, match: .zero, round: round ?? 0))
        }
        #expect(leader.cycle().readStates.isEmpty, "confirmed leadership alone is not enough before the no-op commits")
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1, round: round ?? 0))
        #expect(leader.cycle().readStates == [ReadState(id: Self.readID(n1, 1), outcome: .ready(1))])
    }

    /// Thesis §6.4 steps 2-3: the read index is the commit index when the request arrived, and
    /// the read completes only after a quorum acknowledges a heartbeat round started after the
    /// request; acknowledgements of earlier rounds do not count.
    @Test func thesis6_4_readNeedsQuorumRoundStartedAfterRequest() {
        var leader = PaperReplicationTests.steadyLeader()
        leader.tick()
        let oldRound = leader.drainMessages().compactMap { $0.appendEntries?.round }.max() ?? 0
        leader.requestRead(Self.readID(n1, 7))
        let ready = leader.cycle()
        #expect(ready.readStates.isEmpty)
        // The read starts a heartbeat round at once rather than waiting for the next tick.
        let rounds = Set(ready.allMessages.compactMap { $0.appendEntries?.round })
        #expect(rounds.count == 1)
        let newRound = rounds.first ?? 0
        #expect(newRound > oldRound)
        #expect(Set(ready.allMessages.map(\.to)) == [n2, n3])
        // A late answer to the earlier round proves nothing about leadership now.
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1, round: oldRound))
        leader.deliver(.appendResponse(from: n3, to: n1, term: 1, match: 1, round: oldRound))
        #expect(leader.cycle().readStates.isEmpty)
        // One follower plus the leader is a quorum of three.
        leader.deliver(.appendResponse(from: n3, to: n1, term: 1, match: 1, round: newRound))
        #expect(leader.cycle().readStates == [ReadState(id: Self.readID(n1, 7), outcome: .ready(1))])
    }

    /// Thesis §6.4: the read index is fixed when the read arrives: entries committed while the
    /// read waits for its round do not change it.
    @Test func thesis6_4_readIndexIsCommitIndexAtRequest() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.propose(n1, "a")
        cluster.deliverAll()
        let commitAtRequest = cluster.commitIndex(n1)
        cluster[n1].requestRead(Self.readID(n1, 1))
        cluster.propose(n1, "b")
        cluster.deliverAll()
        #expect(cluster.commitIndex(n1) > commitAtRequest)
        #expect(cluster.readStates[n1] == [ReadState(id: Self.readID(n1, 1), outcome: .ready(commitAtRequest))])
    }

    /// Thesis §6.4: a single-voter leader is its own quorum and serves reads at once (after its no-op).
    @Test func thesis6_4_singleVoterServesReadsAtOnce() {
        var cluster = Cluster(voters: [n1])
        cluster.elect(n1)
        cluster[n1].requestRead(Self.readID(n1, 1))
        cluster.drain(n1)
        #expect(cluster.readStates[n1] == [ReadState(id: Self.readID(n1, 1), outcome: .ready(1))])
    }

    /// Thesis §6.4: a follower forwards a read to its leader and gets the leader's read index back.
    @Test func thesis6_4_followerReadIsForwardedToLeader() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.propose(n1, "a")
        cluster.deliverAll()
        cluster[n2].requestRead(Self.readID(n2, 1))
        cluster.drain(n2)
        #expect(cluster.queue.contains { $0.from == n2 && $0.to == n1 && $0.readIndexRequest != nil })
        cluster.deliverAll()
        #expect(cluster.readStates[n2] == [ReadState(id: Self.readID(n2, 1), outcome: .ready(2))])
        #expect((cluster.readStates[n1] ?? []).isEmpty, "the leader does not report another node's read")
    }

    /// Thesis §6.4: an isolated leader cannot confirm its leadership, so it never serves the
    /// read; when CheckQuorum deposes it the read fails (it had no effect and may be retried).
    @Test func thesis6_4_readFailsWhenLeaderLosesLeadership() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n1)
        cluster[n1].requestRead(Self.readID(n1, 1))
        cluster.tick(n1, 5)
        #expect((cluster.readStates[n1] ?? []).isEmpty)
        cluster.tick(n1, 20)
        #expect(!cluster[n1].isLeader)
        #expect(cluster.readStates[n1] == [ReadState(id: Self.readID(n1, 1), outcome: .failed(.notLeader(leaderHint: nil)))])
    }

    /// Thesis §6.4: a forwarded read fails when the follower learns of a new leader, since the
    /// old one may never answer; a leader change must never leave a read hanging.
    @Test func thesis6_4_forwardedReadFailsOnLeaderChange() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        follower.drainMessages()
        follower.requestRead(Self.readID(n2, 1))
        #expect(follower.drainMessages().first?.readIndexRequest != nil)
        follower.deliver(.append(from: n3, to: n2, term: 2, prevIndex: 0, prevTerm: 0))
        let ready = follower.cycle()
        #expect(ready.readStates.map(\.id) == [Self.readID(n2, 1)])
        if case .ready = ready.readStates.first?.outcome { Issue.record("a read forwarded to a deposed leader succeeded") }
        // A late answer from the old leader is ignored.
        follower.deliver(
            Message(from: n1, to: n2, term: 2, body: .readIndexResponse(ReadIndexResponse(id: Self.readID(n2, 1), readIndex: 9))))
        #expect(follower.cycle().readStates.isEmpty)
    }

    /// Thesis §6.4: a forwarded read whose answer was lost fails after two election timeouts,
    /// even while the leader keeps heartbeating, so a client never waits forever.
    @Test func thesis6_4_lostForwardedReadExpires() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
        follower.drainMessages()
        follower.requestRead(Self.readID(n2, 1))
        follower.drainMessages()  // The request is lost.
        var failedAtTick: Int?
        for tick in 1...30 where failedAtTick == nil {
            follower.tick()
            follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0))
            let states = follower.cycle().readStates
            if !states.isEmpty {
                failedAtTick = tick
                #expect(states == [ReadState(id: Self.readID(n2, 1), outcome: .failed(.notLeader(leaderHint: n1)))])
            }
            follower.drainMessages()
        }
        #expect(follower.roleName == .follower)
        #expect(failedAtTick == 21)
    }

    /// Thesis §6.4: a node with no known leader refuses reads at once rather than holding them.
    @Test func thesis6_4_readWithoutLeaderFails() {
        var node = makeNode(n2, voters: [n1, n2, n3])
        node.requestRead(Self.readID(n2, 1))
        #expect(node.cycle().readStates == [ReadState(id: Self.readID(n2, 1), outcome: .failed(.notLeader(leaderHint: nil)))])
    }

    /// Thesis §6.4 with §3.10: a leader transferring leadership refuses reads.
    @Test func thesis6_4_readRefusedDuringTransfer() throws {
        var leader = PaperReplicationTests.steadyLeader()
        _ = try leader.propose(bytes("a"))
        leader.drainMessages()
        try leader.transferLeadership(to: n3)
        leader.requestRead(Self.readID(n1, 1))
        let states = leader.cycle().readStates
        #expect(states == [ReadState(id: Self.readID(n1, 1), outcome: .failed(.leadershipTransferInProgress(target: n3)))])
    }

    /// Thesis §6.4: a refusal of a stale-term AppendEntries or InstallSnapshot travels in the
    /// refuser's term, which the stale sender may lead by now with a round count of its own;
    /// echoing the old term's round would confirm a ReadIndex round no follower acknowledged.
    /// It carries round 0, which confirms nothing.
    @Test func thesis6_4_staleTermRefusalConfirmsNoRound() {
        var node = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 5)))
        node.deliver(.append(from: n1, to: n2, term: 3, prevIndex: 0, prevTerm: 0, round: 197))
        node.deliver(
            Message(
                from: n1, to: n2, term: 3,
                body: .installSnapshot(
                    InstallSnapshot(
                        metadata: PaperSnapshotTests.snapshot(index: 4, term: 3).metadata, offset: 0, data: [1],
                        done: false, round: 197))))
        let refusals = node.drainMessages().compactMap(\.appendResponse)
        #expect(refusals.count == 2)
        #expect(refusals.allSatisfy { !$0.success && $0.round == 0 })
    }

    /// Limit: at most `pendingReadsMax` reads wait for confirmation; more are refused, not queued.
    @Test func pendingReadsLimit() {
        var leader = makeNode(n1, voters: [n1, n2, n3]) { $0.pendingReadsMax = 2 }
        leader.becomeLeaderForTest()
        for sequence in UInt64(1)...3 { leader.requestRead(Self.readID(n1, sequence)) }
        #expect(leader.cycle().readStates == [ReadState(id: Self.readID(n1, 3), outcome: .failed(.tooManyPendingReads))])
    }
}
