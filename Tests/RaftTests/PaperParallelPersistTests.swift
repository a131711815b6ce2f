import Testing

@testable import RaftCore

/// Thesis §10.2.1: the leader writes its log to its disk in parallel with replicating it. Its
/// AppendEntries may leave before its own write is durable, as long as it counts itself toward
/// commitment only once that write is durable; followers still persist before acknowledging, and
/// nothing may reveal a term or vote before it is durable (`Ready.messagesBeforePersist`).
@Suite struct PaperParallelPersistTests {
    /// Thesis §10.2.1: the AppendEntries carrying a new proposal come in the same `Ready` as the
    /// entry to persist, among the messages that may leave before it is written.
    @Test func thesis10_2_1_appendEntriesLeaveBeforeTheLeadersWrite() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let receipt = try leader.propose(bytes("a"))
        let ready = leader.takeReady()
        #expect(ready.entries.map(\.index) == [receipt.index])
        #expect(ready.mustSync)
        let early = ready.messagesBeforePersist
        #expect(Set(early.map(\.to)) == [n2, n3])
        #expect(early.allSatisfy { $0.appendEntries?.entries.map(\.index) == [receipt.index] })
        #expect(!ready.messages.contains { $0.appendEntries != nil }, "no AppendEntries waits for the write")
        leader.advance(ready)
        // Heartbeats in a durable term leave early too.
        leader.tick()
        let heartbeats = leader.takeReady()
        #expect(Set(heartbeats.messagesBeforePersist.compactMap { $0.appendEntries == nil ? nil : $0.to }) == [n2, n3])
        #expect(heartbeats.messages.isEmpty)
    }

    /// Thesis §10.2.1: in a 3-node cluster one follower's copy plus the leader's own make a
    /// majority, but the leader's copy counts only once `advance` confirmed it durable. (The
    /// acknowledgement is delivered before the `Ready` is even taken: one that outran the
    /// leader's fsync, as a driver that sends first and writes second makes possible.)
    @Test func thesis10_2_1_oneFollowerCommitsOnlyWithTheLeadersDurableCopy() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let receipt = try leader.propose(bytes("a"))
        leader.deliver(.appendResponse(from: n2, to: n1, term: leader.currentTerm, match: receipt.index))
        #expect(leader.log.committed == receipt.index.previous, "one follower alone is no majority of three")
        let ready = leader.takeReady()
        #expect(ready.entries.map(\.index) == [receipt.index])
        #expect(ready.committedEntries.isEmpty)
        #expect(leader.log.committed == receipt.index.previous, "handed out for writing is not durable")
        leader.advance(ready)
        #expect(leader.log.committed == receipt.index)
        #expect(leader.cycle().committedEntries.map(\.index) == [receipt.index])
    }

    /// Thesis §10.2.1: "the leader may even commit an entry before it has been written to its
    /// own disk, if a majority of followers have written it to theirs": two followers of a
    /// 3-node cluster commit the entry without the leader's copy. It is applied only after the
    /// `Ready` that writes it (step 3 follows step 1).
    @Test func thesis10_2_1_twoFollowersCommitWithoutTheLeadersCopy() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let receipt = try leader.propose(bytes("a"))
        for peer in [n2, n3] {
            leader.deliver(.appendResponse(from: peer, to: n1, term: leader.currentTerm, match: receipt.index))
        }
        #expect(leader.log.committed == receipt.index)
        let ready = leader.takeReady()
        #expect(ready.entries.map(\.index) == [receipt.index])
        #expect(ready.committedEntries.map(\.index) == [receipt.index])
        leader.advance(ready)
    }

    /// §5.2 with §10.2.1: a candidate's `Ready` carries its new term and its vote for itself;
    /// its RequestVotes must wait for them to be durable, and nothing leaves early. A pre-vote
    /// changes no term, but its requests are no leader's replication either.
    @Test func thesis10_2_1_candidateSendsNothingEarly() {
        var candidate = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        candidate.campaign()
        let ready = candidate.takeReady()
        #expect(ready.hardState?.currentTerm == 1)
        #expect(ready.messagesBeforePersist.isEmpty)
        #expect(ready.messages.filter { $0.requestVote != nil }.count == 2)
        candidate.advance(ready)

        var preCandidate = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = true }
        preCandidate.campaign()
        let preVote = preCandidate.takeReady()
        #expect(preVote.hardState == nil)
        #expect(preVote.messagesBeforePersist.isEmpty)
        #expect(preVote.messages.filter { $0.requestVote?.isPreVote == true }.count == 2)
    }

    /// The rule that keeps Log Matching: a single voter with a learner wins its election in the
    /// batch that starts it, so one `Ready` carries its new term, its vote and its no-op together
    /// with the AppendEntries to the learner. Those must not leave before the term is durable: a
    /// crash could bring the node back in the previous term to lead the same term again, with a
    /// different entry at the index it already sent. Once the term is durable they leave early.
    @Test func thesis10_2_1_newTermInTheSameReadySendsNothingEarly() throws {
        var node = makeNode(n1, voters: [n1], learners: [n2])
        node.campaign()
        #expect(node.isLeader)
        let first = node.takeReady()
        #expect(first.hardState == HardState(currentTerm: 1, votedFor: n1, commitIndex: 0))
        #expect(first.entries.map(\.payload) == [.noop])
        #expect(first.messagesBeforePersist.isEmpty, "term 1 is not durable yet")
        #expect(first.messages.contains { $0.to == n2 && $0.term == 1 && $0.appendEntries != nil })
        node.advance(first)
        node.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        let receipt = try node.propose(bytes("a"))
        let second = node.takeReady()
        #expect(second.messagesBeforePersist.contains { $0.appendEntries?.entries.last?.index == receipt.index })
        #expect(second.messages.isEmpty)
        node.advance(second)
    }

    /// The same rule for a leader that learns of a newer term in the batch: the AppendEntries it
    /// sent while still leading wait, with the new term, for the write.
    @Test func thesis10_2_1_leaderDeposedInTheBatchSendsNothingEarly() throws {
        var leader = PaperReplicationTests.steadyLeader()
        _ = try leader.propose(bytes("a"))
        leader.tick()  // heartbeats into the outbox
        leader.deliver(.appendResponse(from: n2, to: n1, term: Term(5), match: .zero))
        #expect(!leader.isLeader)
        let ready = leader.takeReady()
        #expect(ready.hardState?.currentTerm == 5)
        #expect(ready.messagesBeforePersist.isEmpty)
        #expect(ready.messages.contains { $0.term == 1 && $0.appendEntries != nil })
        leader.advance(ready)
    }

    /// Figure 2 ("respond to RPCs only after updating stable storage"): a follower's
    /// acknowledgements are never early, not even in a `Ready` that changes neither term nor vote.
    @Test func thesis10_2_1_followerAcknowledgementsNeverEarly() {
        var follower = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 1)))
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0, entries: logWithTerms([1, 1])))
        let ready = follower.takeReady()
        #expect(ready.hardState == nil, "no new term or vote: only the kind of message keeps it back")
        #expect(ready.entries.count == 2)
        #expect(ready.messagesBeforePersist.isEmpty)
        #expect(ready.messages.first?.appendResponse?.matchIndex == 2)
        follower.advance(ready)

        // A chunk of a snapshot is acknowledged only after the driver wrote it.
        let snapshot = PaperSnapshotTests.snapshot(index: 5, term: 1)
        follower.deliver(PaperSnapshotTests.installSnapshot(snapshot, term: 1, done: false))
        let chunk = follower.takeReady()
        #expect(chunk.snapshotChunks.count == 1)
        #expect(chunk.messagesBeforePersist.isEmpty)
        #expect(chunk.messages.first?.installSnapshotResponse?.bytesReceived == snapshot.data.count)
        follower.advance(chunk)
    }

    /// §5.1: votes are never early. A vote granted again to the same candidate changes no hard
    /// state, so only the kind of message keeps it back; refusals and pre-votes stay back too.
    @Test func thesis10_2_1_votesNeverEarly() {
        var voter = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 3)))
        voter.deliver(.requestVote(from: n1, to: n2, term: 3, lastIndex: 0, lastTerm: 0))
        let vote = voter.cycle()
        #expect(vote.hardState?.votedFor == n1)
        #expect(vote.messagesBeforePersist.isEmpty)
        voter.deliver(.requestVote(from: n1, to: n2, term: 3, lastIndex: 0, lastTerm: 0))
        let again = voter.takeReady()
        #expect(again.hardState == nil)
        #expect(again.messagesBeforePersist.isEmpty)
        #expect(again.messages.first?.voteResponse?.voteGranted == true)
        voter.advance(again)
        voter.deliver(.requestVote(from: n3, to: n2, term: 3, lastIndex: 0, lastTerm: 0))
        voter.deliver(.requestVote(from: n3, to: n2, term: 4, lastIndex: 0, lastTerm: 0, preVote: true))
        let others = voter.takeReady()
        #expect(others.messagesBeforePersist.isEmpty)
        #expect(others.messages.compactMap(\.voteResponse).count == 2)
        voter.advance(others)
    }

    /// A leader's answer to a follower's forwarded read is not replication: it waits for the write.
    @Test func thesis10_2_1_readIndexAnswersNeverEarly() {
        var leader = PaperReplicationTests.steadyLeader()
        let id = ReadRequestID(origin: n2, sequence: 1)
        leader.deliver(Message(from: n2, to: n1, term: 1, body: .readIndexRequest(ReadIndexRequest(id: id))))
        let round = leader.drainMessages().compactMap { $0.appendEntries?.round }.max() ?? 0
        leader.deliver(.appendResponse(from: n3, to: n1, term: 1, match: 1, round: round))
        let ready = leader.takeReady()
        #expect(ready.messages.contains { $0.to == n2 && $0.body == .readIndexResponse(ReadIndexResponse(id: id, readIndex: 1)) })
        #expect(!ready.messagesBeforePersist.contains { message in
            if case .readIndexResponse = message.body { return true }
            return false
        })
        leader.advance(ready)
    }

    /// A leader's InstallSnapshot chunks and TimeoutNow are replication in a durable term: they
    /// leave before the leader's write, in every `Ready` of a run that sends them.
    @Test func thesis10_2_1_snapshotChunksAndTimeoutNowLeaveEarly() throws {
        var cluster = Cluster(voters: [n1, n2, n3]) {
            $0.snapshotChunkBytes = 4
            $0.compactionHoldEntriesMax = 0
        }
        cluster.elect(n1)
        cluster.isolate(n3)
        for index in 0..<5 { cluster.propose(n1, "e\(index)") }
        cluster.deliverAll()
        let compacted = cluster.compact(n1, data: bytes("0123456789"))
        #expect(compacted?.metadata.lastIncludedIndex == 6)
        cluster.heal()
        cluster.tick(15)
        try cluster[n1].transferLeadership(to: n3)
        cluster.deliverAll()
        #expect(cluster.leaders == [n3])
        let readies = cluster.readies[n1] ?? []
        let early = readies.flatMap(\.messagesBeforePersist)
        #expect(early.filter { $0.installSnapshot != nil }.count >= 3)
        #expect(early.filter(\.isTimeoutNow).count == 1)
        #expect(!readies.flatMap(\.messages).contains { $0.installSnapshot != nil || $0.isTimeoutNow })
    }

    /// Thesis §10.2.1 end to end: the leader crashes after its AppendEntries left and before its
    /// own write. The followers' copies keep the entry, and a new leader commits it; the old
    /// leader comes back in its durable term, so it cannot lead that term again, and takes the
    /// entry from the new leader.
    @Test func thesis10_2_1_leaderCrashBeforeItsWriteLosesNothingCommitted() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        let proposed = cluster.propose(n1, "a")
        let receipt = try #require(proposed)
        let ready = cluster[n1].takeReady()
        #expect(ready.entries.map(\.index) == [receipt.index])
        cluster.queue += ready.messagesBeforePersist
        cluster.restart(n1)  // The Ready was never persisted.
        #expect(cluster.lastIndex(n1) == receipt.index.previous)
        #expect(cluster[n1].currentTerm == receipt.term, "the term the AppendEntries revealed is durable")
        cluster.deliverAll()
        #expect(cluster.lastIndex(n2) == receipt.index)
        #expect(cluster.lastIndex(n3) == receipt.index)
        cluster.tick(40)
        let leader = try #require(cluster.leaders.first)
        #expect(leader != n1, "n1 lacks an entry a majority holds")
        #expect(cluster[leader].currentTerm > receipt.term)
        for id in cluster.ids {
            #expect(cluster[id].term(at: receipt.index) == receipt.term)
            #expect(cluster.commitIndex(id) > receipt.index)
            #expect(cluster.appliedCommands(id) == ["a"])
        }
    }
}

/// `RaftNode.durableIndex` tells a driver which committed entries it may apply before the
/// persist step of a `Ready` (the exception to the order in `Ready`'s contract).
@Suite struct DurableIndexTests {
    /// A leader's new entry is not durable while its `Ready` is out, and is once advanced; an
    /// entry committed then comes in the next `Ready` at or below the durable index, beside a
    /// newer proposal that is not.
    @Test func committedEntriesOfAnEarlierRoundAreAtOrBelowTheDurableIndex() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let first = try leader.propose(bytes("a"))
        let ready = leader.takeReady()
        #expect(leader.durableIndex == first.index.previous, "handed out for writing is not durable")
        leader.advance(ready)
        #expect(leader.durableIndex == first.index)
        leader.deliver(.appendResponse(from: n2, to: n1, term: leader.currentTerm, match: first.index))
        let second = try leader.propose(bytes("b"))
        let durable = leader.durableIndex
        let next = leader.takeReady()
        #expect(next.committedEntries.map(\.index) == [first.index])
        #expect(next.committedEntries.allSatisfy { $0.index <= durable }, "may be applied before this write")
        #expect(next.entries.map(\.index) == [second.index])
        #expect(second.index > durable)
        leader.advance(next)
    }

    /// §5.3: a follower replaces a conflicting suffix and learns in the same message that the
    /// new entries are committed. They are on no disk of this node yet, so they are above the
    /// durable index although the entries they replaced were written.
    @Test func entriesReplacingADurableSuffixAreAboveTheDurableIndex() {
        var follower = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 1), entries: logWithTerms([1, 1, 1])))
        #expect(follower.durableIndex == 3)
        follower.deliver(
            .append(from: n1, to: n2, term: 2, prevIndex: 1, prevTerm: 1, entries: logWithTerms([2, 2], from: 2), commit: 3))
        let durable = follower.durableIndex
        let ready = follower.takeReady()
        #expect(ready.entries.map(\.index) == [2, 3])
        #expect(ready.committedEntries.map(\.index) == [1, 2, 3])
        #expect(durable == 1, "the replaced entries were durable, their replacements are not")
        #expect(ready.committedEntries.contains { $0.index > durable }, "the driver must write before applying")
        follower.advance(ready)
        #expect(follower.durableIndex == 3)
    }

    /// Two followers commit an entry the leader has not written yet: it is above the durable
    /// index, so the driver must apply it only after writing it.
    @Test func anEntryCommittedWithoutTheLeadersCopyIsAboveTheDurableIndex() throws {
        var leader = PaperReplicationTests.steadyLeader()
        let receipt = try leader.propose(bytes("a"))
        for peer in [n2, n3] {
            leader.deliver(.appendResponse(from: peer, to: n1, term: leader.currentTerm, match: receipt.index))
        }
        let durable = leader.durableIndex
        let ready = leader.takeReady()
        #expect(ready.committedEntries.map(\.index) == [receipt.index])
        #expect(ready.committedEntries.contains { $0.index > durable })
        leader.advance(ready)
    }
}
