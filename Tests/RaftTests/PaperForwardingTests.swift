import Testing

@testable import RaftCore

/// Proposals a follower forwards to its leader instead of redirecting its client (§8 has
/// clients find the leader; relaying is the server finding it on the client's behalf).
@Suite struct PaperForwardingTests {
    /// §5.3: the leader appends a forwarded command as its own entry and replicates it; every
    /// node, the forwarding follower included, applies it once.
    @Test func forwardedCommandIsAppendedByTheLeaderAndAppliedEverywhere() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let leader = try cluster[n2].forwardProposal(bytes("fwd"))
        #expect(leader == n1)
        cluster.drain(n2)
        #expect(cluster.queue.contains { $0.from == n2 && $0.to == n1 && $0.body == .forwardedProposal(ForwardedProposal(command: bytes("fwd"))) })
        cluster.deliverAll()
        cluster.tick()
        for id in [n1, n2, n3] { #expect(cluster.appliedCommands(id) == ["fwd"]) }
        #expect(cluster.lastIndex(n1) == 2, "the no-op, then the forwarded command, appended once")
    }

    /// A follower that knows no leader sends nothing: the failure is definite.
    @Test func followerWithoutLeaderRefusesAtOnce() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        #expect(throws: ProposalError.notLeader(leaderHint: nil)) { try follower.forwardProposal(bytes("x")) }
        #expect(follower.drainMessages().isEmpty)
    }

    /// A leader does not forward; it proposes.
    @Test func leaderRefusesToForward() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        #expect(throws: ProposalError.self) { try cluster[n1].forwardProposal(bytes("x")) }
    }

    /// A forward reaching a node that no longer leads is dropped, never appended there nor
    /// passed on: it can apply at most once.
    @Test func forwardToAFollowerIsDropped() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let before = cluster.lastIndex(n3)
        cluster.deliver(Message(from: n2, to: n3, term: 1, body: .forwardedProposal(ForwardedProposal(command: bytes("x")))))
        #expect(cluster.lastIndex(n3) == before)
        #expect(!cluster.queue.contains { $0.from == n3 && $0.to != n2 && $0.body == .forwardedProposal(ForwardedProposal(command: bytes("x"))) })
        cluster.deliverAll()
        #expect(cluster.appliedCommands(n1).isEmpty)
    }

    /// Thesis §3.10: a leader transferring leadership accepts no proposal, forwarded ones
    /// included.
    @Test func transferringLeaderDropsForwards() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n3)
        try cluster[n1].transferLeadership(to: n3)
        let before = cluster.lastIndex(n1)
        cluster.deliver(Message(from: n2, to: n1, term: 1, body: .forwardedProposal(ForwardedProposal(command: bytes("x")))))
        #expect(cluster.lastIndex(n1) == before)
    }

    /// §5.1: a forward from an earlier term is refused like any stale message.
    @Test func staleTermForwardIsDropped() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        try cluster[n1].transferLeadership(to: n2)
        cluster.deliverAll()
        #expect(cluster[n2].isLeader)
        #expect(cluster[n2].status.currentTerm == 2)
        let before = cluster.lastIndex(n2)
        cluster.deliver(Message(from: n3, to: n2, term: 1, body: .forwardedProposal(ForwardedProposal(command: bytes("old")))))
        #expect(cluster.lastIndex(n2) == before)
    }
}
