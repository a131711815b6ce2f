import Testing

@testable import RaftCore

/// Proposals a follower forwards to its leader instead of redirecting its client (§8 has
/// clients find the leader; relaying is the server finding it on the client's behalf).
@Suite struct PaperForwardingTests {
    static func forward(_ text: String, id: UInt64 = 1) -> Message.Body {
        .forwardedProposal(ForwardedProposal(id: id, command: bytes(text)))
    }

    static func refusals(_ cluster: Cluster, _ id: NodeID) -> [RefusedForward] {
        (cluster.readies[id] ?? []).flatMap(\.refusedForwards)
    }

    /// §5.3: the leader appends a forwarded command as its own entry and replicates it; every
    /// node, the forwarding follower included, applies it once. Nothing is refused.
    @Test func forwardedCommandIsAppendedByTheLeaderAndAppliedEverywhere() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let leader = try cluster[n2].forwardProposal(bytes("fwd"), id: 7)
        #expect(leader == n1)
        cluster.drain(n2)
        #expect(cluster.queue.contains { $0.from == n2 && $0.to == n1 && $0.body == Self.forward("fwd", id: 7) })
        cluster.deliverAll()
        cluster.tick()
        for id in [n1, n2, n3] { #expect(cluster.appliedCommands(id) == ["fwd"]) }
        #expect(cluster.lastIndex(n1) == 2, "the no-op, then the forwarded command, appended once")
        #expect(Self.refusals(cluster, n2).isEmpty)
    }

    /// A follower that knows no leader sends nothing: the failure is definite.
    @Test func followerWithoutLeaderRefusesAtOnce() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        #expect(throws: ProposalError.notLeader(leaderHint: nil)) { try follower.forwardProposal(bytes("x"), id: 1) }
        #expect(follower.drainMessages().isEmpty)
    }

    /// A leader does not forward; it proposes.
    @Test func leaderRefusesToForward() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        #expect(throws: ProposalError.self) { try cluster[n1].forwardProposal(bytes("x"), id: 1) }
    }

    /// A forward reaching a node that does not lead is refused (naming the leader it knows),
    /// never appended there nor passed on: it can apply at most once, and its client learns at
    /// once that it did not.
    @Test func forwardToAFollowerIsRefused() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let before = cluster.lastIndex(n3)
        cluster.deliver(Message(from: n2, to: n3, term: 1, body: Self.forward("x", id: 4)))
        #expect(cluster.lastIndex(n3) == before)
        #expect(!cluster.queue.contains { $0.from == n3 && $0.to != n2 })
        cluster.deliverAll()
        #expect(cluster.appliedCommands(n1).isEmpty)
        #expect(Self.refusals(cluster, n2) == [RefusedForward(id: 4, error: .notLeader(leaderHint: n1))])
    }

    /// Thesis §3.10: a leader transferring leadership accepts no proposal, forwarded ones
    /// included; the follower is told where leadership is going.
    @Test func transferringLeaderRefusesForwards() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.isolate(n3)
        try cluster[n1].transferLeadership(to: n3)
        let before = cluster.lastIndex(n1)
        cluster.deliver(Message(from: n2, to: n1, term: 1, body: Self.forward("x", id: 5)))
        #expect(cluster.lastIndex(n1) == before)
        cluster.deliver(where: { $0.to == n2 && $0.from == n1 })
        #expect(Self.refusals(cluster, n2) == [RefusedForward(id: 5, error: .leadershipTransferInProgress(target: n3))])
    }

    /// The leader's bound on uncommitted bytes applies to forwarded commands too.
    @Test func leaderOverItsUncommittedBytesRefuses() throws {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.uncommittedBytesMax = 64 }
        cluster.elect(n1)
        // Nothing commits any more, so the first command stays uncommitted.
        cluster.dropIf = { message in
            if case .appendEntries = message.body { return true }
            return false
        }
        cluster.propose(n1, String(repeating: "a", count: 60))
        cluster.deliver(Message(from: n2, to: n1, term: 1, body: Self.forward(String(repeating: "b", count: 60), id: 6)))
        cluster.deliver(where: { $0.to == n2 && $0.from == n1 })
        #expect(Self.refusals(cluster, n2) == [RefusedForward(id: 6, error: .uncommittedBytesLimit)])
    }

    /// §5.1: a forward from an earlier term is refused like any stale message, and the refusal
    /// carries the newer term to the sender.
    @Test func staleTermForwardIsRefused() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        try cluster[n1].transferLeadership(to: n2)
        cluster.deliverAll()
        #expect(cluster[n2].isLeader)
        #expect(cluster[n2].status.currentTerm == 2)
        let before = cluster.lastIndex(n2)
        cluster.deliver(Message(from: n3, to: n2, term: 1, body: Self.forward("old", id: 9)))
        #expect(cluster.lastIndex(n2) == before)
        let refusal = try #require(cluster.queue.first { $0.from == n2 && $0.to == n3 })
        #expect(refusal.term == 2)
        #expect(refusal.body == .forwardedProposalRefused(ForwardedProposalRefusal(id: 9, reason: .notLeader(leaderHint: n2))))
    }

    /// A duplicated forward (or one overtaken by a later forward) is dropped without an answer:
    /// appended once, and never refused after its first copy was appended.
    @Test func duplicateForwardIsAppendedOnce() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let copy = Message(from: n2, to: n1, term: 1, body: Self.forward("once", id: 3))
        cluster.deliver(copy)
        cluster.deliver(copy)
        cluster.deliver(Message(from: n2, to: n1, term: 1, body: Self.forward("late", id: 2)))
        cluster.deliverAll()
        cluster.tick()
        #expect(cluster.appliedCommands(n1) == ["once"])
        #expect(Self.refusals(cluster, n2).isEmpty)
        // After leadership moved away, a copy is still not refused by the old leader.
        try cluster[n1].transferLeadership(to: n3)
        cluster.deliverAll()
        #expect(cluster[n3].isLeader)
        cluster.deliver(copy)
        cluster.deliverAll()
        #expect(Self.refusals(cluster, n2).isEmpty)
        #expect(cluster.appliedCommands(n2) == ["once"])
    }
}
