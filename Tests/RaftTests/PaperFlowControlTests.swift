import Testing

@testable import RaftCore

/// Flow control and fast backtracking (§5.3, after etcd-io/raft's probe and replicate modes).
/// Every limit is checked at its edge.
@Suite struct PaperFlowControlTests {
    static func appends(_ messages: [Message], to peer: NodeID) -> [AppendEntries] {
        messages.filter { $0.to == peer }.compactMap(\.appendEntries)
    }

    /// Probe mode: until a follower's position is known the leader sends it one AppendEntries
    /// at a time; its first acknowledgement switches it to replicate mode, which pipelines.
    @Test func probeSendsOneMessageUntilAcknowledged() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3])
        let first = leader.becomeLeaderForTest()
        #expect(Self.appends(first, to: n2).count == 1)
        for text in ["a", "b", "c"] {
            _ = try leader.propose(bytes(text))
            #expect(Self.appends(leader.drainMessages(), to: n2).isEmpty, "a probe is outstanding")
        }
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        #expect(leader.leaderState?.progress[n2]?.mode == .replicate)
        #expect(leader.leaderState?.progress[n3]?.mode == .probe)
        let sent = leader.drainMessages()
        #expect(Self.appends(sent, to: n2).flatMap(\.entries).map(\.index) == [2, 3, 4])
        #expect(Self.appends(sent, to: n3).isEmpty)
        // In replicate mode each proposal goes out at once, without waiting for answers.
        _ = try leader.propose(bytes("d"))
        #expect(Self.appends(leader.drainMessages(), to: n2).map { $0.entries.map(\.index) } == [[5]])
    }

    /// `inflightMessagesMax`: in replicate mode at most that many AppendEntries are unanswered;
    /// each acknowledgement lets one more go.
    @Test func inflightLimitRespected() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3]) {
            $0.inflightMessagesMax = 2
            $0.entriesPerAppendMax = 1
        }
        leader.becomeLeaderForTest()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        leader.drainMessages()
        var sent: [AppendEntries] = []
        for index in 0..<5 {
            _ = try leader.propose(bytes("e\(index)"))
            sent += Self.appends(leader.drainMessages(), to: n2)
        }
        #expect(sent.map { $0.entries.map(\.index) } == [[2], [3]])
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 2))
        #expect(Self.appends(leader.drainMessages(), to: n2).map { $0.entries.map(\.index) } == [[4]])
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 4))
        #expect(Self.appends(leader.drainMessages(), to: n2).map { $0.entries.map(\.index) } == [[5], [6]])
    }

    /// `entriesPerAppendMax`: proposals batched into one `Ready` are split into messages of at
    /// most that many contiguous entries.
    @Test func entriesPerMessageLimit() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3]) { $0.entriesPerAppendMax = 3 }
        leader.becomeLeaderForTest()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        leader.drainMessages()
        for index in 0..<7 { _ = try leader.propose(bytes("e\(index)")) }
        let sent = Self.appends(leader.drainMessages(), to: n2)
        #expect(sent.map { $0.entries.map(\.index.rawValue) } == [[2, 3, 4], [5, 6, 7], [8]])
        #expect(sent.map(\.prevLogIndex) == [1, 4, 7])
    }

    /// `bytesPerAppendMax`: a message carries entries up to that many bytes; a single entry
    /// larger than the limit still goes, alone.
    @Test func bytesPerMessageLimit() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3]) { $0.bytesPerAppendMax = 100 }
        leader.becomeLeaderForTest()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        leader.drainMessages()
        let forty = String(repeating: "x", count: 40)  // 64 bytes with the header allowance
        _ = try leader.propose(bytes(forty))
        _ = try leader.propose(bytes(forty))
        _ = try leader.propose(bytes(String(repeating: "y", count: 200)))
        _ = try leader.propose(bytes("z1"))  // 26 bytes
        _ = try leader.propose(bytes("z2"))
        let sent = Self.appends(leader.drainMessages(), to: n2)
        #expect(sent.map { $0.entries.map(\.index.rawValue) } == [[2], [3], [4], [5, 6]])
        for message in sent where message.entries.count > 1 {
            #expect(message.entries.reduce(0) { $0 + $1.sizeBytes } <= 100)
        }
        #expect(Entry.headerBytes + 40 == 64)
    }

    /// `uncommittedBytesMax`: a leader refuses proposals once that many bytes are uncommitted,
    /// and accepts them again when they commit; one entry is always admitted when nothing is
    /// outstanding, however large.
    @Test func uncommittedBytesLimit() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3]) { $0.uncommittedBytesMax = 150 }
        leader.becomeLeaderForTest()
        let fifty = bytes(String(repeating: "x", count: 50))  // 74 bytes each
        _ = try leader.propose(fifty)
        _ = try leader.propose(fifty)
        #expect(throws: ProposalError.uncommittedBytesLimit) { try leader.propose(fifty) }
        #expect(leader.log.lastIndex == 3)
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 3))
        #expect(leader.log.committed == 3)
        let huge = bytes(String(repeating: "h", count: 1000))
        _ = try leader.propose(huge)
        #expect(throws: ProposalError.uncommittedBytesLimit) { try leader.propose(bytes("small")) }
    }

    /// A rejection that answers an older message (reordered behind a later success) does not
    /// throw a replicating follower back into probe mode.
    @Test func staleRejectionIgnored() throws {
        var leader = makeNode(n1, voters: [n1, n2, n3])
        leader.becomeLeaderForTest()
        for index in 0..<4 { _ = try leader.propose(bytes("e\(index)")) }
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 5))
        #expect(leader.leaderState?.progress[n2]?.mode == .replicate)
        let stale = Message(
            from: n2, to: n1, term: 1,
            body: .appendEntriesResponse(
                AppendEntriesResponse(success: false, matchIndex: 0, rejectedIndex: 3, conflictTerm: nil, conflictIndex: 2, round: 0)))
        leader.deliver(stale)
        #expect(leader.leaderState?.progress[n2]?.mode == .replicate)
        #expect(leader.leaderState?.progress[n2]?.matchIndex == 5)
        #expect(leader.leaderState?.progress[n2]?.nextIndex == 6)
    }

    /// A pipeline whose messages were lost is detected within an election timeout and the
    /// follower is probed again and caught up.
    @Test func lostPipelineRecovers() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        cluster.dropIf = { $0.to == n3 && $0.appendEntries?.entries.isEmpty == false }
        for text in ["a", "b"] { cluster.propose(n1, text) }
        cluster.deliverAll()
        cluster.dropIf = { _ in false }
        cluster.tick(12)
        #expect(cluster[n3].entries == cluster[n1].entries)
        #expect(cluster.appliedCommands(n3) == ["a", "b"])
    }

    /// §5.3 fast backtracking: with the conflict hints a leader skips a whole conflicting term
    /// per round trip instead of one entry, so a follower with a long divergent log is repaired
    /// in a couple of rejections, not one per entry.
    @Test(arguments: [
        Array(repeating: 2, count: 50),  // a long divergent term the leader never had
        Array(repeating: 3, count: 20) + Array(repeating: 5, count: 30),  // a shared term, then a divergent one
        [UInt64](),  // far behind
    ] as [[UInt64]])
    func section5_3_fastBacktrackingRoundTrips(followerSuffix: [UInt64]) {
        let leaderLog = logWithTerms([1] + Array(repeating: 3, count: 25) + Array(repeating: 4, count: 25))
        var cluster = Cluster(
            voters: [n1, n2, n3],
            states: [
                n1: PersistentState(hardState: HardState(currentTerm: 5), entries: leaderLog),
                n2: PersistentState(hardState: HardState(currentTerm: 5), entries: logWithTerms([1] + followerSuffix)),
                n3: PersistentState(hardState: HardState(currentTerm: 5), entries: leaderLog),
            ])
        // n2's divergent term 5 would make its log more up to date than n1's; n3 votes for n1.
        cluster.cut(n1, n2)
        cluster.elect(n1)
        cluster.heal()
        cluster.tick(3)
        let rejections = cluster.delivered.filter { $0.from == n2 && $0.to == n1 && $0.appendResponse?.success == false }
        #expect(rejections.count <= 2, "\(rejections.count) rejections")
        #expect(cluster[n2].entries == cluster[n1].entries)
    }
}
