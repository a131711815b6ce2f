import Testing

@testable import RaftCore

/// Figure 2 (AppendEntries RPC, "Rules for Servers: Leaders") and §5.3, §5.4.2 of the Raft paper:
/// log replication and commitment.
@Suite struct PaperReplicationTests {
    /// A leader of a 3-node cluster (term 1, no-op at index 1) whose followers acknowledged the no-op.
    static func steadyLeader(_ tweak: (inout RaftConfiguration) -> Void = { _ in }) -> RaftNode {
        var leader = makeNode(n1, voters: [n1, n2, n3], tweak)
        leader.becomeLeaderForTest()
        for peer in [n2, n3] { leader.deliver(.appendResponse(from: peer, to: n1, term: leader.currentTerm, match: 1)) }
        leader.drainMessages()
        return leader
    }

    /// §5.3: the leader appends a command to its log as a new entry of its term, then issues
    /// AppendEntries in parallel to each follower, anchored at the entry before it.
    @Test func section5_3_leaderAppendsProposalAndReplicates() {
        var leader = Self.steadyLeader()
        #expect(leader.log.committed == 1)
        let receipt = try? leader.propose(bytes("a"))
        #expect(receipt == ProposalReceipt(index: 2, term: 1))
        #expect(leader.entries.last == entry(2, term: 1, "a"))
        let messages = leader.drainMessages()
        #expect(Set(messages.map(\.to)) == [n2, n3])
        for message in messages {
            let request = message.appendEntries
            #expect(request?.prevLogIndex == 1)
            #expect(request?.prevLogTerm == 1)
            #expect(request?.entries == [entry(2, term: 1, "a")])
            #expect(request?.leaderCommit == 1)
        }
    }

    /// §5.3: an entry is committed once the leader has replicated it on a majority, and only then.
    @Test(arguments: [(1, 0, true), (3, 0, false), (3, 1, true), (5, 1, false), (5, 2, true), (4, 1, false), (4, 2, true)])
    func section5_3_leaderCommitsOnMajority(size: Int, acknowledgements: Int, committed: Bool) {
        let voters = Set((1...UInt64(size)).map { NodeID($0) })
        var leader = makeNode(n1, voters: voters)
        leader.becomeLeaderForTest()
        _ = try? leader.propose(bytes("a"))
        leader.drainMessages()
        for peer in voters.sorted().dropFirst().prefix(acknowledgements) {
            leader.deliver(.appendResponse(from: peer, to: n1, term: leader.currentTerm, match: 2))
        }
        #expect(leader.log.committed == (committed ? 2 : 0))
    }

    /// §5.3: committing an entry also commits every preceding entry, including those of earlier
    /// terms, and the leader hands them all to its state machine in log order.
    @Test func section5_3_commitIncludesPrecedingEntries() {
        var leader = makeNode(
            n1, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 2), entries: logWithTerms([1, 2, 2])))
        leader.becomeLeaderForTest()
        #expect(leader.currentTerm == 3)
        leader.deliver(.appendResponse(from: n2, to: n1, term: 3, match: 4))
        #expect(leader.log.committed == 4)
        let ready = leader.cycle()
        #expect(ready.committedEntries.map(\.index) == [1, 2, 3, 4])
    }

    /// §5.3 end to end: once committed, entries are applied in order on the leader and, after the
    /// next AppendEntries carries the commit index, on every follower.
    @Test func section5_3_committedEntriesAppliedEverywhere() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        for text in ["a", "b", "c"] { cluster.propose(n1, text) }
        cluster.deliverAll()
        #expect(cluster.appliedCommands(n1) == ["a", "b", "c"])
        cluster.tick()
        for id in cluster.ids {
            #expect(cluster.appliedCommands(id) == ["a", "b", "c"])
            #expect(cluster.commitIndex(id) == 4)
        }
    }

    /// Figure 2, AppendEntries rule 2 (§5.3): reply false if the log does not contain an entry at
    /// prevLogIndex whose term matches prevLogTerm; the hints name the conflicting term and its
    /// first index, or the log's end.
    @Test(arguments: [
        // (prevIndex, prevTerm, success, conflictTerm, conflictIndex) against follower log [1, 2, 2].
        (0, 0, true, nil, 0), (1, 1, true, nil, 0), (3, 2, true, nil, 0), (3, 1, false, 2, 2), (2, 1, false, 2, 2),
        (4, 2, false, nil, 4), (9, 3, false, nil, 4),
    ] as [(UInt64, UInt64, Bool, UInt64?, UInt64)])
    func section5_3_followerConsistencyCheck(
        prevIndex: UInt64, prevTerm: UInt64, success: Bool, conflictTerm: UInt64?, conflictIndex: UInt64
    ) {
        var follower = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 3), entries: logWithTerms([1, 2, 2])))
        follower.deliver(.append(from: n1, to: n2, term: 3, prevIndex: prevIndex, prevTerm: prevTerm))
        let response = follower.drainMessages().first?.appendResponse
        #expect(response?.success == success)
        if success {
            #expect(response?.matchIndex == LogIndex(prevIndex))
        } else {
            #expect(response?.conflictTerm == conflictTerm.map { Term($0) })
            #expect(response?.conflictIndex == LogIndex(conflictIndex))
            #expect(response?.rejectedIndex == LogIndex(prevIndex))
        }
        // A consistency check never changes the log.
        #expect(follower.entries == logWithTerms([1, 2, 2]))
    }

    /// Figure 2, AppendEntries rules 3 and 4 (§5.3): a conflicting entry and all that follow it
    /// are deleted and the new entries appended; entries that already match are kept, so a
    /// stale or duplicated AppendEntries never truncates the log.
    @Test func section5_3_followerTruncatesOnlyConflictingSuffix() {
        let original = logWithTerms([1, 1, 2, 2])
        var follower = makeNode(
            n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 3), entries: original))
        // A duplicate of an old message: entry 2 already matches, 3 and 4 stay.
        follower.deliver(.append(from: n1, to: n2, term: 3, prevIndex: 1, prevTerm: 1, entries: [original[1]]))
        #expect(follower.entries == original)
        #expect(follower.drainMessages().first?.appendResponse?.matchIndex == 2)
        // A conflict at index 3: 3 and 4 go, the leader's entries replace them.
        let replacement = [entry(3, term: 3, "new3"), entry(4, term: 3, "new4"), entry(5, term: 3, "new5")]
        follower.deliver(.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 1, entries: replacement))
        #expect(follower.entries == Array(original.prefix(2)) + replacement)
        let ready = follower.cycle()
        #expect(ready.entries == replacement, "the replaced suffix is handed out for persistence")
        #expect(ready.mustSync)
    }

    /// Figure 2, AppendEntries rule 5: the follower sets commitIndex to min(leaderCommit, index of
    /// the last new entry), never beyond what this message proved matches.
    @Test(arguments: [(1, 1), (3, 3), (9, 3)] as [(UInt64, UInt64)])
    func section5_3_followerCommitIsBoundedByLastNewEntry(leaderCommit: UInt64, expected: UInt64) {
        // The follower holds a stale entry 4 from term 1 that this message does not vouch for.
        var follower = makeNode(
            n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 2), entries: logWithTerms([1, 1, 1, 1])))
        follower.deliver(
            .append(from: n1, to: n2, term: 2, prevIndex: 1, prevTerm: 1, entries: [entry(2, term: 1, "t1i2"), entry(3, term: 1, "t1i3")], commit: leaderCommit))
        #expect(follower.log.committed == LogIndex(expected))
        let ready = follower.cycle()
        #expect(ready.committedEntries.map(\.index.rawValue) == Array(1...expected))
    }

    /// §5.3, Figure 7: a new leader brings every kind of divergent follower log (missing entries,
    /// extra uncommitted entries, both) into line with its own.
    @Test(arguments: [
        [1, 1, 1, 4, 4, 5, 5, 6, 6],  // (a) missing one entry
        [1, 1, 1, 4],  // (b) missing many
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  // (c) one extra uncommitted entry
        [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  // (d) extra entries of a later term
        [1, 1, 1, 4, 4, 4, 4],  // (e) missing and extra
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  // (f) a long divergent history
    ] as [[UInt64]])
    func section5_3_figure7_leaderBringsFollowerLogInLine(followerTerms: [UInt64]) {
        let leaderLog = logWithTerms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6])
        var cluster = Cluster(
            voters: [n1, n2, n3],
            states: [
                n1: PersistentState(hardState: HardState(currentTerm: 7), entries: leaderLog),
                n2: PersistentState(hardState: HardState(currentTerm: 7), entries: logWithTerms(followerTerms)),
                n3: PersistentState(hardState: HardState(currentTerm: 7), entries: leaderLog),
            ])
        cluster.elect(n1)
        cluster.tick(3)
        #expect(cluster[n1].currentTerm == 8)
        #expect(cluster[n2].entries == cluster[n1].entries)
        #expect(cluster[n2].entries.count == 11)
        #expect(cluster.commitIndex(n2) == 11)
        #expect(cluster.storage[n2]!.durable.entries == cluster[n1].entries)
    }

    /// §5.4.2: a leader never commits an entry of an earlier term by counting replicas, even
    /// when a majority stores it; it commits it only together with an entry of its own term.
    @Test func section5_4_2_onlyCurrentTermEntriesCommitByCounting() {
        var leader = makeNode(
            n1, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 3), entries: logWithTerms([1, 2])))
        leader.becomeLeaderForTest()
        #expect(leader.currentTerm == 4)
        leader.deliver(.appendResponse(from: n2, to: n1, term: 4, match: 2))
        leader.deliver(.appendResponse(from: n3, to: n1, term: 4, match: 2))
        #expect(leader.log.committed == 0, "entry 2 of term 2 is on all three servers but must not commit")
        leader.deliver(.appendResponse(from: n2, to: n1, term: 4, match: 3))
        #expect(leader.log.committed == 3)
    }

    /// Figure 2 "Leaders": heartbeats carry the commit index, so followers learn of commitment
    /// without new entries; a heartbeat never claims more than the follower is known to match.
    @Test func section5_3_heartbeatsCarryCommitIndex() {
        var leader = Self.steadyLeader()
        _ = try? leader.propose(bytes("a"))
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 2))
        #expect(leader.log.committed == 2)
        leader.drainMessages()
        leader.tick()
        let heartbeats = leader.drainMessages().filter { $0.appendEntries?.entries.isEmpty == true }
        #expect(heartbeats.first { $0.to == n2 }?.appendEntries?.leaderCommit == 2)
        // n3 acknowledged only index 1: its heartbeat is anchored there and says commit 1.
        let toN3 = heartbeats.first { $0.to == n3 }?.appendEntries
        #expect(toN3?.prevLogIndex == 1)
        #expect(toN3?.leaderCommit == 1)
    }

    /// Figure 2 "Leaders": a follower whose acknowledgement arrives after its entry committed (the
    /// other follower answered first) is told the commit index at once, not at the next heartbeat;
    /// a write it forwarded, or a read it serves, waits for it to apply the entry.
    @Test func section5_3_aLateAcknowledgerLearnsTheCommitAtOnce() {
        var leader = Self.steadyLeader()
        _ = try? leader.propose(bytes("a"))
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 2))
        #expect(leader.log.committed == 2)
        leader.drainMessages()
        leader.deliver(.appendResponse(from: n3, to: n1, term: 1, match: 2))
        let toN3 = leader.drainMessages().filter { $0.to == n3 }
        #expect(toN3.count == 1)
        #expect(toN3.first?.appendEntries?.leaderCommit == 2)
        #expect(toN3.first?.appendEntries?.prevLogIndex == 2)
        // Told once: the same acknowledgement again sends nothing.
        leader.deliver(.appendResponse(from: n3, to: n1, term: 1, match: 2))
        #expect(leader.drainMessages().isEmpty)
    }
}
