import Testing

@testable import RaftCore

/// §5.4 of the Raft paper: Election Restriction, Leader Completeness, Figure 8 and State
/// Machine Safety, checked on whole clusters.
@Suite struct PaperSafetyTests {
    /// §5.4.1, Leader Completeness: a server missing committed entries cannot be elected, so the
    /// next leader holds every committed entry.
    @Test func section5_4_1_staleServerCannotBeElected() throws {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5]) { $0.preVote = false }
        cluster.elect(n1)
        cluster.partition([[n1, n2, n3], [n4], [n5]])
        for text in ["a", "b"] { cluster.propose(n1, text) }
        cluster.deliverAll()
        #expect(cluster.commitIndex(n1) == 3)
        // n1 fails; the stale n4 and n5 rejoin n2 and n3.
        cluster.partition([[n2, n3, n4, n5]])
        cluster.tick(10)  // Followers' leader leases (CheckQuorum) expire.
        let n4Won = cluster.campaign(n4, attempts: 2)
        #expect(!n4Won, "n4 lacks committed entries and must not win")
        cluster.tick(40)
        let leader = try #require(cluster.leaders.first { $0 != n1 })
        #expect([n2, n3].contains(leader))
        #expect(cluster.appliedCommands(leader) == ["a", "b"])
    }

    /// §5.4.2, Figure 8: an entry of an old term that reaches a majority is not committed by the
    /// next leader, may then be overwritten, and so is never applied anywhere (State Machine
    /// Safety, §5.4.3).
    @Test func section5_4_2_figure8() throws {
        var cluster = Cluster(voters: [n1, n2, n3, n4, n5]) {
            $0.preVote = false
            $0.checkQuorum = false
            $0.entriesPerAppendMax = 1
        }
        // (a) n1 leads term 1 and replicates entry 2 only to n2.
        cluster.elect(n1)
        cluster.partition([[n1, n2], [n3], [n4], [n5]])
        let proposed = cluster.propose(n1, "doomed")
        let doomed = try #require(proposed)
        cluster.deliverAll()
        #expect(cluster[n2].term(at: 2) == doomed.term)
        #expect(cluster.commitIndex(n1) == 1)

        // (b) n1 crashes; n5 wins term 2 with n3 and n4 but its entries reach nobody.
        cluster.restart(n1)
        cluster.partition([[n1], [n2], [n3, n4, n5]])
        cluster.dropIf = { $0.from == n5 && $0.appendEntries != nil }
        let won1 = cluster.campaign(n5)
        #expect(won1)
        #expect(cluster[n5].term(at: 2) == cluster[n5].currentTerm)

        // (c) n5 crashes; n1 returns and wins with n2 and n3, and replicates the old entry 2 to
        // n3 (but not its own no-op at index 3): entry 2 is now on a majority.
        cluster.restart(n5)
        cluster.partition([[n1, n2, n3], [n4], [n5]])
        // n1's first probe to n3 (entry 3 after entry 2) is refused, since n3 lacks entry 2; every
        // later message carrying entry 3 to n3 is lost.
        let seen = Counter()
        cluster.dropIf = { message in
            guard message.to == n3, message.appendEntries?.entries.contains(where: { $0.index >= 3 }) == true else {
                return false
            }
            seen.count += 1
            return seen.count > 1
        }
        let won2 = cluster.campaign(n1)
        #expect(won2)
        cluster.tick(2)
        #expect(cluster[n3].term(at: 2) == doomed.term)
        #expect(cluster[n2].term(at: 2) == doomed.term)
        #expect(cluster.commitIndex(n1) == 1, "Figure 8 (c): entry 2 is on a majority but must not commit")
        #expect(cluster.commitIndex(n2) == 1)

        // (d) n1 crashes; n5 wins with n3 and n4 and overwrites entry 2 everywhere.
        cluster.restart(n1)
        cluster.partition([[n2, n3, n4, n5], [n1]])
        cluster.dropIf = { _ in false }
        let won3 = cluster.campaign(n5)
        #expect(won3)
        cluster.heal()
        cluster.tick(3)
        let finalLog = cluster[n5].entries
        for id in cluster.ids {
            #expect(cluster[id].entries == finalLog, "node \(id)")
            #expect(cluster.applied[id]!.allSatisfy { $0.index != 2 || $0.term != doomed.term }, "node \(id) applied the doomed entry")
        }
        #expect(cluster[n5].term(at: 2) != doomed.term)
        #expect(cluster.commitIndex(n5) == cluster.lastIndex(n5))
    }

    /// §5.4.3, State Machine Safety under repeated leader changes: every node applies the same
    /// sequence, and no acknowledged (committed) command is lost.
    @Test func section5_4_3_stateMachineSafetyAcrossLeaderChanges() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        var committed: [String] = []
        var leader = n1
        cluster.elect(leader)
        for round in 0..<6 {
            let text = "cmd\(round)"
            let proposed = cluster.propose(leader, text)
            let receipt = try #require(proposed)
            cluster.deliverAll()
            #expect(cluster.commitIndex(leader) >= receipt.index)
            committed.append(text)
            // Depose the leader by isolating it until another is elected, then heal.
            cluster.isolate(leader)
            cluster.tick(40)
            let next = try #require(cluster.leaders.first { $0 != leader })
            cluster.heal()
            cluster.tick(3)
            leader = next
        }
        cluster.tick(2)
        let reference = cluster.appliedCommands(leader)
        #expect(reference == committed)
        for id in cluster.ids { #expect(cluster.appliedCommands(id) == reference, "node \(id)") }
    }

    /// §5.5: Raft RPCs are idempotent. Replaying every message ever delivered, in order and
    /// then reversed, changes no log, commit index or applied state and raises no error.
    @Test func section5_5_duplicateAndReorderedMessagesAreHarmless() {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        for text in ["a", "b", "c"] { cluster.propose(n1, text) }
        cluster.deliverAll()
        cluster.tick(2)
        let history = cluster.delivered
        let logs = cluster.ids.map { cluster[$0].entries }
        let commits = cluster.ids.map { cluster.commitIndex($0) }
        for message in history + history.reversed() {
            cluster.deliver(message)
            cluster.drop()  // Answers to replays are not delivered.
        }
        #expect(cluster.ids.map { cluster[$0].entries } == logs)
        #expect(cluster.ids.map { cluster.commitIndex($0) } == commits)
        #expect(cluster.leaders == [n1])
        for id in cluster.ids { #expect(cluster.appliedCommands(id) == ["a", "b", "c"], "node \(id)") }
        // And the cluster still works.
        let receipt = cluster.propose(n1, "d")
        cluster.deliverAll()
        #expect(cluster.commitIndex(n1) == receipt?.index)
    }

    /// Figure 2 "All Servers" and §5.1: term, vote and log survive a crash (they were synced
    /// before any message depending on them was sent), so a restarted server never votes twice
    /// in one term.
    @Test func section5_1_restartedServerDoesNotVoteTwice() {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.preVote = false }
        cluster[n2].campaign()
        cluster.deliver(where: { $0.to == n1 && $0.requestVote != nil })
        cluster.drop()
        #expect(cluster[n1].status.votedFor == n2)
        cluster.restart(n1)
        #expect(cluster[n1].currentTerm == 1)
        #expect(cluster[n1].status.votedFor == n2)
        // n3 campaigns in the same term 1: the restarted n1 must refuse.
        cluster[n3].startElection(preVote: false, isLeadershipTransfer: false)
        #expect(cluster[n3].currentTerm == 1)
        cluster.deliver(where: { $0.to == n1 && $0.from == n3 })
        let answer = cluster.queue.first { $0.from == n1 && $0.to == n3 }?.voteResponse
        #expect(answer?.voteGranted == false)
    }
}

/// A mutable count shared with a message filter.
final class Counter {
    var count = 0
}
