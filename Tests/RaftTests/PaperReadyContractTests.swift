import Testing

@testable import RaftCore

/// The `Ready`/`advance` contract (see `Ready`): what must be durable before which message, and
/// what may be applied. Figure 2's "persistent state ... updated on stable storage before
/// responding to RPCs" is the paper rule behind it.
@Suite struct PaperReadyContractTests {
    /// Figure 2 / §5.1: a granted vote and the new term it was cast in appear in `hardState` of
    /// the same `Ready` as the vote, with `mustSync`, so the vote cannot leave before it is durable.
    @Test func voteAndNewTermSyncedWithTheVote() {
        var node = makeNode(n1, voters: [n1, n2, n3])
        node.deliver(.requestVote(from: n2, to: n1, term: 3, lastIndex: 0, lastTerm: 0))
        let ready = node.cycle()
        #expect(ready.hardState == HardState(currentTerm: 3, votedFor: n2, commitIndex: 0))
        #expect(ready.mustSync)
        #expect(ready.messages.first?.voteResponse?.voteGranted == true)
        // Nothing changed since: the next Ready carries no hard state.
        node.deliver(.requestVote(from: n2, to: n1, term: 3, lastIndex: 0, lastTerm: 0))
        let again = node.cycle()
        #expect(again.hardState == nil)
        #expect(!again.mustSync)
    }

    /// Figure 2: a vote cast in the term the voter already had (no term change) is still synced
    /// before the vote leaves.
    @Test func voteInSameTermIsSynced() {
        var node = makeNode(n1, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 3)))
        node.deliver(.requestVote(from: n2, to: n1, term: 3, lastIndex: 0, lastTerm: 0))
        let ready = node.cycle()
        #expect(ready.messages.first?.voteResponse?.voteGranted == true)
        #expect(ready.hardState?.votedFor == n2)
        #expect(ready.mustSync)
    }

    /// §5.2: a candidate's new term and vote for itself are synced in the `Ready` that carries
    /// its RequestVotes. A refused vote in a new term still syncs the term.
    @Test func candidateTermSyncedWithRequestVote() {
        var node = makeNode(n1, voters: [n1, n2, n3]) { $0.preVote = false }
        node.campaign()
        let ready = node.cycle()
        #expect(ready.hardState?.currentTerm == 1)
        #expect(ready.hardState?.votedFor == n1)
        #expect(ready.mustSync)
        #expect(ready.messages.filter { $0.requestVote != nil }.count == 2)

        var refuser = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(entries: logWithTerms([1, 1])))
        refuser.deliver(.requestVote(from: n1, to: n2, term: 4, lastIndex: 0, lastTerm: 0))
        let refusal = refuser.cycle()
        #expect(refusal.messages.first?.voteResponse?.voteGranted == false)
        #expect(refusal.hardState?.currentTerm == 4)
        #expect(refusal.mustSync)
    }

    /// Figure 2: a follower acknowledges entries only in the `Ready` that hands them out for a
    /// synced write. A commit-index-only change needs no sync.
    @Test func acknowledgementsTravelWithSyncedEntries() {
        var follower = makeNode(n2, voters: [n1, n2, n3])
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0, entries: logWithTerms([1, 1])))
        let ready = follower.cycle()
        #expect(ready.entries == logWithTerms([1, 1]))
        #expect(ready.mustSync)
        #expect(ready.messages.first?.appendResponse?.matchIndex == 2)
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 2, prevTerm: 1, commit: 2))
        let commitOnly = follower.cycle()
        #expect(commitOnly.hardState == HardState(currentTerm: 1, votedFor: nil, commitIndex: 2))
        #expect(commitOnly.entries.isEmpty)
        #expect(!commitOnly.mustSync)
        #expect(commitOnly.committedEntries == logWithTerms([1, 1]))
    }

    /// The leader counts its own log for commitment only up to what `advance` confirmed
    /// durable: in a two-voter cluster a follower's acknowledgement alone commits nothing.
    @Test func leaderDoesNotCountItselfBeforeAdvance() throws {
        var leader = makeNode(n1, voters: [n1, n2])
        leader.becomeLeaderForTest()
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: 1))
        #expect(leader.log.committed == 1)
        leader.drainMessages()
        let receipt = try leader.propose(bytes("a"))
        leader.deliver(.appendResponse(from: n2, to: n1, term: 1, match: receipt.index))
        #expect(leader.log.committed == 1, "the leader's own copy is not durable yet")
        let ready = leader.takeReady()
        #expect(ready.entries.map(\.index) == [receipt.index])
        #expect(ready.committedEntries.isEmpty)
        leader.advance(ready)
        #expect(leader.log.committed == receipt.index)
        #expect(leader.cycle().committedEntries.map(\.index) == [receipt.index])
    }

    /// A single voter commits its entries once `advance` confirms its own write, not before.
    @Test func singleVoterCommitsAfterAdvance() throws {
        var node = makeNode(n1, voters: [n1])
        node.campaign()
        let first = node.takeReady()
        #expect(first.entries.map(\.payload) == [.noop])
        #expect(first.committedEntries.isEmpty)
        #expect(node.log.committed == 0)
        node.advance(first)
        #expect(node.log.committed == 1)
        let receipt = try node.propose(bytes("a"))
        let second = node.takeReady()
        #expect(second.committedEntries.map(\.index) == [1], "only the no-op; the new entry is not durable yet")
        node.advance(second)
        #expect(node.cycle().committedEntries.map(\.index) == [receipt.index])
    }

    /// Committed entries handed to the application are never newer than what was handed out for
    /// persistence in the same or an earlier `Ready`, across a run with leader changes.
    @Test func committedEntriesNeverExceedHandedOut() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        for round in 0..<4 {
            let leader = cluster.leaders.first ?? n1
            for index in 0..<3 { cluster.propose(leader, "r\(round)e\(index)") }
            cluster.deliverAll(holding: { $0.to == NodeID(UInt64(round % 3 + 1)) && $0.appendResponse == nil })
            cluster.isolate(leader)
            cluster.tick(40)
            cluster.heal()
            cluster.deliverAll()
            cluster.tick(3)
        }
        var checked = 0
        for id in cluster.ids {
            var handedOut: [LogIndex: Entry] = [:]
            var snapshotIndex = LogIndex.zero
            for ready in cluster.readies[id] ?? [] {
                if let snapshot = ready.snapshot { snapshotIndex = snapshot.metadata.lastIncludedIndex }
                for entry in ready.entries {
                    handedOut = handedOut.filter { $0.key < entry.index }
                    handedOut[entry.index] = entry
                }
                for entry in ready.committedEntries {
                    checked += 1
                    #expect(entry.index > snapshotIndex)
                    #expect(handedOut[entry.index] == entry, "node \(id) applies \(entry.index) never handed out")
                }
            }
        }
        #expect(checked > 30)
    }

    /// `applyEntriesPerReadyMax`: at most that many committed entries per `Ready`.
    @Test func applyEntriesPerReadyLimit() {
        var follower = makeNode(n2, voters: [n1, n2, n3]) { $0.applyEntriesPerReadyMax = 2 }
        follower.deliver(.append(from: n1, to: n2, term: 1, prevIndex: 0, prevTerm: 0, entries: logWithTerms([1, 1, 1, 1, 1]), commit: 5))
        var batches: [[UInt64]] = []
        while follower.hasReady { batches.append(follower.cycle().committedEntries.map(\.index.rawValue)) }
        #expect(batches == [[1, 2], [3, 4], [5]])
    }

    /// A restarted node does not hand out again what its state machine already applied.
    @Test func restartResumesAfterAppliedIndex() {
        var node = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 1, commitIndex: 5), entries: logWithTerms([1, 1, 1, 1, 1])),
            applied: 3)
        #expect(node.cycle().committedEntries.map(\.index) == [4, 5])
    }
}
