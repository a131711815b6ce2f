import Testing

@testable import RaftCore

/// Figure 2 ("Rules for Servers") and §5.1, §5.2, §5.4.1 of the Raft paper: terms, roles,
/// elections and votes.
@Suite struct PaperElectionTests {
    /// §5.2: "When servers start up, they begin as followers."
    @Test func section5_2_serversStartAsFollowers() {
        let node = makeNode(n1, voters: [n1, n2, n3])
        #expect(node.roleName == .follower)
        #expect(node.currentTerm == .zero)
        #expect(node.status.leaderID == nil)
    }

    /// §5.1, Figure 2 "All Servers": a follower that sees a higher term in any message adopts it.
    @Test(arguments: [
        Message.append(from: n2, to: n1, term: 5, prevIndex: 0, prevTerm: 0),
        Message.requestVote(from: n2, to: n1, term: 5, lastIndex: 0, lastTerm: 0),
        Message.voteResponse(from: n2, to: n1, term: 5, granted: false),
        Message.appendResponse(from: n2, to: n1, term: 5, match: .zero),
    ])
    func section5_1_followerAdoptsHigherTerm(_ message: Message) {
        var node = makeNode(n1, voters: [n1, n2, n3])
        node.deliver(message)
        #expect(node.currentTerm == 5)
        #expect(node.roleName == .follower)
        if message.appendEntries != nil {
            #expect(node.status.leaderID == n2)
        }
    }

    /// §5.1: "If a candidate or leader discovers that its term is out of date, it immediately
    /// reverts to follower state."
    @Test func section5_1_candidateAndLeaderRevertToFollowerOnHigherTerm() {
        var candidate = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        candidate.campaign()
        #expect(candidate.roleName == .candidate)
        candidate.drainMessages()
        candidate.deliver(.append(from: n2, to: n1, term: 7, prevIndex: 0, prevTerm: 0))
        #expect(candidate.roleName == .follower)
        #expect(candidate.currentTerm == 7)

        var leader = makeNode(n1, voters: [n1, n2, n3])
        leader.becomeLeaderForTest()
        #expect(leader.isLeader)
        // A response from a newer term (a follower that moved on) deposes the leader.
        leader.deliver(.voteResponse(from: n3, to: n1, term: 9, granted: false))
        #expect(leader.roleName == .follower)
        #expect(leader.currentTerm == 9)
    }

    /// §5.1, Figure 2 AppendEntries rule 1 and RequestVote rule 1: a request from a stale term is
    /// refused and answered with the current term, and changes nothing.
    @Test func section5_1_staleTermRequestsRejected() {
        var node = makeNode(n1, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 4)))
        node.deliver(.append(from: n2, to: n1, term: 3, prevIndex: 0, prevTerm: 0, entries: [entry(1, term: 3)]))
        node.deliver(.requestVote(from: n3, to: n1, term: 3, lastIndex: 10, lastTerm: 3))
        let messages = node.drainMessages()
        #expect(node.entries.isEmpty)
        #expect(node.currentTerm == 4)
        #expect(node.status.leaderID == nil)
        #expect(node.status.votedFor == nil)
        #expect(messages.count == 2)
        #expect(messages.allSatisfy { $0.term == 4 })
        #expect(messages.first { $0.to == n2 }?.appendResponse?.success == false)
        #expect(messages.first { $0.to == n3 }?.voteResponse?.voteGranted == false)
    }

    /// §5.2: a leader sends periodic heartbeats (empty AppendEntries) to all followers.
    @Test func section5_2_leaderSendsHeartbeatsEveryInterval() {
        var leader = makeNode(n1, voters: [n1, n2, n3]) { $0.heartbeatIntervalTicks = 3 }
        leader.becomeLeaderForTest()
        // Acknowledge the no-op so that both followers are in replicate mode.
        for peer in [n2, n3] { leader.deliver(.appendResponse(from: peer, to: n1, term: leader.currentTerm, match: 1)) }
        leader.drainMessages()
        leader.tick(times: 2)
        #expect(leader.drainMessages().isEmpty)
        leader.tick()
        let heartbeats = leader.drainMessages()
        #expect(Set(heartbeats.map(\.to)) == [n2, n3])
        #expect(heartbeats.allSatisfy { $0.appendEntries?.entries.isEmpty == true && $0.term == leader.currentTerm })
    }

    /// §5.2: a follower that hears nothing for an election timeout becomes a candidate: it
    /// increments its term, votes for itself and sends RequestVote to every other server.
    @Test func section5_2_followerStartsElectionOnTimeout() {
        var node = makeNode(n1, voters: [n1, n2, n3], state: PersistentState(entries: logWithTerms([1, 2]))) {
            $0.preVote = false
        }
        node.tick(times: 19)  // the longest timeout is 19 ticks; a second one cannot fit after the first
        #expect(node.roleName == .candidate)
        #expect(node.currentTerm == 1)
        #expect(node.status.votedFor == n1)
        let requests = node.drainMessages()
        #expect(Set(requests.map(\.to)) == [n2, n3])
        for request in requests {
            #expect(request.term == 1)
            #expect(request.requestVote == RequestVote(lastLogIndex: 2, lastLogTerm: 2, isPreVote: false, isLeadershipTransfer: false))
        }
    }

    /// §5.2: a candidate that neither wins nor loses starts a new election (new term) when its
    /// election timeout elapses again.
    @Test func section5_2_candidateStartsNewElectionOnTimeout() {
        var node = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        node.campaign()
        node.drainMessages()
        #expect(node.currentTerm == 1)
        node.tick(times: 19)
        #expect(node.roleName == .candidate)
        #expect(node.currentTerm == 2)
        #expect(node.drainMessages().filter { $0.requestVote != nil }.count == 2)
    }

    /// §5.2: a candidate wins with votes from a majority of the full cluster, and only then.
    @Test(arguments: [
        (1, 0, RaftRole.leader), (3, 1, .leader), (3, 0, .candidate), (5, 2, .leader), (5, 1, .candidate),
    ])
    func section5_2_candidateWinsWithMajority(size: Int, grants: Int, expected: RaftRole) {
        let voters = Set((1...UInt64(size)).map { NodeID($0) })
        var node = makeNode(n1, voters: voters) { $0.preVote = false }
        node.campaign()
        node.drainMessages()
        for voter in voters.sorted().dropFirst().prefix(grants) {
            node.deliver(.voteResponse(from: voter, to: n1, term: node.currentTerm, granted: true))
        }
        #expect(node.roleName == expected)
    }

    /// §5.2: a candidate that a majority refuses goes back to being a follower.
    @Test func section5_2_candidateLosesOnMajorityRefusal() {
        var node = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        node.campaign()
        node.deliver(.voteResponse(from: n2, to: n1, term: 1, granted: false))
        #expect(node.roleName == .candidate)
        node.deliver(.voteResponse(from: n3, to: n1, term: 1, granted: false))
        #expect(node.roleName == .follower)
        #expect(node.currentTerm == 1)
    }

    /// §5.2: "each server will vote for at most one candidate in a given term, on a
    /// first-come-first-served basis" (a repeated request from the same candidate is granted again).
    @Test func section5_2_atMostOneVotePerTerm() {
        var node = makeNode(n1, voters: [n1, n2, n3])
        node.deliver(.requestVote(from: n2, to: n1, term: 1, lastIndex: 0, lastTerm: 0))
        node.deliver(.requestVote(from: n3, to: n1, term: 1, lastIndex: 0, lastTerm: 0))
        node.deliver(.requestVote(from: n2, to: n1, term: 1, lastIndex: 0, lastTerm: 0))
        let answers = node.drainMessages().compactMap { message in message.voteResponse.map { (message.to, $0.voteGranted) } }
        #expect(answers.map(\.0) == [n2, n3, n2])
        #expect(answers.map(\.1) == [true, false, true])
        #expect(node.status.votedFor == n2)
    }

    /// §5.2: a candidate that receives AppendEntries from a leader of its own term recognises
    /// it and returns to follower state.
    @Test func section5_2_candidateYieldsToLeaderOfSameTerm() {
        var node = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        node.campaign()
        node.drainMessages()
        node.deliver(.append(from: n2, to: n1, term: 1, prevIndex: 0, prevTerm: 0))
        #expect(node.roleName == .follower)
        #expect(node.currentTerm == 1)
        #expect(node.status.leaderID == n2)
    }

    /// §5.2: election timeouts are chosen randomly from a fixed interval so that split votes are
    /// rare: `[electionTimeoutTicks, 2 * electionTimeoutTicks)`, and different seeds differ.
    @Test func section5_2_electionTimeoutsAreRandomized() {
        var seen: Set<Int> = []
        for seed in UInt64(1)...200 {
            var node = makeNode(n1, voters: [n1, n2, n3], seed: seed) { $0.preVote = false }
            var ticks = 0
            while node.roleName == .follower && ticks < 100 {
                node.tick()
                ticks += 1
            }
            #expect(ticks >= 10 && ticks < 20, "seed \(seed): timeout \(ticks)")
            seen.insert(ticks)
        }
        #expect(seen.count == 10, "every timeout in [10, 20) occurs across 200 seeds: \(seen.sorted())")
    }

    /// §5.4.1: a voter denies its vote if its own log is more up-to-date than the candidate's
    /// (compare last terms, then lengths).
    @Test(arguments: [
        // (candidate last index, candidate last term, granted) against a voter log [1, 1, 2].
        (3, 2, true), (4, 2, true), (2, 2, false), (5, 1, false), (1, 3, true), (0, 0, false),
    ])
    func section5_4_1_voteRequiresUpToDateLog(lastIndex: UInt64, lastTerm: UInt64, granted: Bool) {
        var node = makeNode(
            n1, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 2), entries: logWithTerms([1, 1, 2])))
        node.deliver(.requestVote(from: n2, to: n1, term: 3, lastIndex: lastIndex, lastTerm: lastTerm))
        let answer = node.drainMessages().first?.voteResponse
        #expect(answer?.voteGranted == granted)
        #expect(node.status.votedFor == (granted ? n2 : nil))
        // The higher term is adopted either way (§5.1).
        #expect(node.currentTerm == 3)
    }

    /// §5.2 in a whole cluster: after the first election exactly one leader exists and every
    /// follower knows it; terms agree.
    @Test func section5_2_clusterElectsOneLeader() throws {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5])
        cluster.tick(40)
        #expect(cluster.leaders.count == 1)
        let leader = try #require(cluster.leaders.first)
        for id in cluster.ids {
            #expect(cluster[id].status.leaderID == leader)
            #expect(cluster[id].currentTerm == cluster[leader].currentTerm)
        }
    }

    /// §5.2, Election Safety: a stale leader cut off from the majority does not prevent the
    /// majority from electing a new leader in a later term, and on rejoining it steps down.
    @Test func section5_2_electionSafetyAcrossPartition() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let oldTerm = cluster[n1].currentTerm
        cluster.isolate(n1)
        cluster.tick(40)
        // CheckQuorum deposed n1; the majority elected one new leader in a later term.
        let leaders = cluster.leaders
        #expect(leaders.count == 1)
        let leader = try #require(leaders.first)
        #expect(leader != n1)
        #expect(cluster[leader].currentTerm > oldTerm)
        #expect(cluster[n1].currentTerm == oldTerm, "PreVote kept the isolated node's term")
        cluster.heal()
        cluster.tick(3)
        #expect(cluster.leaders == [leader])
        #expect(cluster[n1].status.leaderID == leader)
    }

    /// §8 and thesis §6.4: a new leader appends a no-op entry of its term at once.
    @Test func section8_newLeaderAppendsNoop() throws {
        var node = makeNode(n1, voters: [n1, n2, n3], state: PersistentState(entries: logWithTerms([1, 1])))
        let messages = node.becomeLeaderForTest()
        let last = try #require(node.entries.last)
        #expect(last.index == 3)
        #expect(last.payload == .noop)
        #expect(last.term == node.currentTerm)
        #expect(messages.contains { $0.appendEntries?.entries.contains(last) == true })
    }
}
