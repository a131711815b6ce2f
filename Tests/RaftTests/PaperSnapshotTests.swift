import Testing

@testable import RaftCore

/// Log compaction and InstallSnapshot (§7).
@Suite struct PaperSnapshotTests {
    /// A snapshot of `data` covering a log of `terms`.
    static func snapshot(index: UInt64, term: UInt64, data: [UInt8] = [1, 2, 3]) -> Snapshot {
        Snapshot(
            metadata: SnapshotMetadata(
                lastIncludedIndex: LogIndex(index), lastIncludedTerm: Term(term),
                membership: ClusterMembership(voters: [n1, n2, n3])),
            data: data)
    }

    static func installSnapshot(_ snapshot: Snapshot, term: UInt64 = 2, offset: Int = 0, done: Bool = true) -> Message {
        Message(
            from: n1, to: n2, term: Term(term),
            body: .installSnapshot(
                InstallSnapshot(metadata: snapshot.metadata, offset: offset, data: snapshot.data, done: done, round: 0)))
    }

    /// §7: a snapshot at the applied index replaces the log prefix it covers, in memory and in
    /// storage, and a restarted node starts from it; compacting again at the same index does nothing.
    @Test func section7_compactionDiscardsCoveredPrefix() throws {
        var cluster = Cluster(voters: [n1, n2, n3])
        cluster.elect(n1)
        for index in 0..<5 { cluster.propose(n1, "e\(index)") }
        cluster.deliverAll()
        cluster.tick()
        #expect(cluster[n2].log.applied == 6)
        let compacted = cluster.compact(n2, data: bytes("state@6"))
        let snapshot = try #require(compacted)
        #expect(snapshot.metadata.lastIncludedIndex == 6)
        #expect(snapshot.metadata.lastIncludedTerm == cluster[n1].currentTerm)
        #expect(snapshot.metadata.membership == ClusterMembership(voters: [n1, n2, n3]))
        #expect(cluster[n2].entries.isEmpty)
        #expect(cluster[n2].status.snapshotIndex == 6)
        #expect(cluster[n2].term(at: 6) == snapshot.metadata.lastIncludedTerm)
        #expect(cluster[n2].term(at: 5) == nil)
        let again = cluster.compact(n2, data: [])
        #expect(again == nil, "nothing new to compact")
        #expect(cluster.storage[n2]!.durable.snapshot == snapshot)
        #expect(cluster.storage[n2]!.durable.entries.isEmpty)
        // The cluster goes on; the compacted follower restarts from its snapshot.
        cluster.restart(n2)
        #expect(cluster[n2].status.snapshotIndex == 6)
        #expect(cluster[n2].log.applied == 6)
        cluster.propose(n1, "after")
        cluster.deliverAll()
        cluster.tick()
        #expect(cluster.appliedCommands(n2) == ["after"])
    }

    /// §7: a follower that needs compacted entries receives the snapshot in chunks of at most
    /// `snapshotChunkBytes`, in order, installs it, and then resumes ordinary replication.
    @Test func section7_laggingFollowerReceivesChunkedSnapshot() throws {
        var cluster = Cluster(voters: [n1, n2, n3]) {
            $0.snapshotChunkBytes = 4
            $0.compactionHoldEntriesMax = 0
        }
        cluster.elect(n1)
        cluster.isolate(n3)
        for index in 0..<5 { cluster.propose(n1, "e\(index)") }
        cluster.deliverAll()
        let data = bytes("0123456789")
        let compacted = cluster.compact(n1, data: data)
        let snapshot = try #require(compacted)
        #expect(snapshot.metadata.lastIncludedIndex == 6)
        cluster.heal()
        cluster.tick(15)
        let chunks = cluster.delivered.compactMap { $0.to == n3 ? $0.installSnapshot : nil }
        #expect(chunks.map(\.offset) == [0, 4, 8])
        #expect(chunks.map(\.done) == [false, false, true])
        #expect(chunks.allSatisfy { $0.data.count <= 4 })
        #expect(chunks.flatMap(\.data) == data)
        #expect(cluster.installedSnapshots[n3] == [Snapshot(metadata: snapshot.metadata, data: data)])
        #expect(cluster.storage[n3]!.durable.snapshot == snapshot)
        #expect(cluster.appliedIndex[n3] == 6)
        cluster.propose(n1, "after")
        cluster.deliverAll()
        cluster.tick()
        #expect(cluster[n3].entries == cluster[n1].entries)
        #expect(cluster.appliedCommands(n3) == ["after"])
    }

    /// §7: "If existing log entry has same index and term as snapshot's last included entry,
    /// retain log entries following it"; otherwise the whole log is discarded.
    @Test(arguments: [(1, true), (2, false)] as [(UInt64, Bool)])
    func section7_followerKeepsEntriesAfterMatchingSnapshot(snapshotTerm: UInt64, keeps: Bool) {
        let log = logWithTerms([1, 1, 1, 1, 1])
        var follower = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 2, commitIndex: 2), entries: log), applied: 2)
        let snapshot = Self.snapshot(index: 3, term: snapshotTerm)
        follower.deliver(Self.installSnapshot(snapshot))
        #expect(follower.entries == (keeps ? Array(log.suffix(2)) : []))
        #expect(follower.status.snapshotIndex == 3)
        #expect(follower.log.committed == 3)
        let ready = follower.cycle()
        #expect(ready.snapshot == Snapshot(metadata: snapshot.metadata, data: []), "RaftCore never holds the bytes")
        #expect(ready.snapshotChunks.map(\.data) == [snapshot.data], "the driver gets them to write")
        #expect(ready.mustSync)
        #expect(ready.committedEntries.isEmpty, "the snapshot replaces entries up to 3")
        let response = ready.messages.first?.installSnapshotResponse
        #expect(response?.installed == true)
        #expect(response?.matchIndex == 3)
    }

    /// §7: a snapshot that covers nothing the follower has not already committed is ignored
    /// (it must not roll the state machine back), and the leader is told where the follower is.
    @Test func section7_staleSnapshotIgnored() {
        let log = logWithTerms([1, 1, 1, 1])
        var follower = makeNode(
            n2, voters: [n1, n2, n3],
            state: PersistentState(hardState: HardState(currentTerm: 2, commitIndex: 3), entries: log), applied: 3)
        follower.deliver(Self.installSnapshot(Self.snapshot(index: 2, term: 1)))
        #expect(follower.entries == log)
        #expect(follower.status.snapshotIndex == 0)
        let ready = follower.cycle()
        #expect(ready.snapshot == nil)
        let response = ready.messages.first?.installSnapshotResponse
        #expect(response?.installed == true)
        #expect(response?.matchIndex == 3)
    }

    /// `Ready`'s contract: when `snapshot` is set, the snapshot's last chunk is the last of
    /// `snapshotChunks`. A driver that steps many messages before taking a `Ready` (group commit)
    /// can deliver a completed transfer and the first chunk of a newer one together; the newer one
    /// is refused (offset 0 expected again) until the completed one is installed, or the driver
    /// would be told to install a snapshot whose file the newer transfer just replaced.
    @Test func section7_newTransferWaitsForTheInstallInTheSameBatch() {
        var follower = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 2)))
        let older = Self.snapshot(index: 5, term: 2, data: [0, 1])
        let newer = Self.snapshot(index: 9, term: 2, data: [7, 8])
        follower.deliver(Self.installSnapshot(Snapshot(metadata: older.metadata, data: [0]), offset: 0, done: false))
        follower.deliver(Self.installSnapshot(Snapshot(metadata: older.metadata, data: [1]), offset: 1, done: true))
        follower.deliver(Self.installSnapshot(Snapshot(metadata: newer.metadata, data: [7]), offset: 0, done: false))
        var ready = follower.cycle()
        #expect(ready.snapshot?.metadata == older.metadata)
        #expect(ready.snapshotChunks.map(\.metadata) == [older.metadata, older.metadata])
        let answers = ready.messages.compactMap(\.installSnapshotResponse)
        #expect(answers.last == InstallSnapshotResponse(
            lastIncludedIndex: 9, lastIncludedTerm: 2, bytesReceived: 0, installed: false, matchIndex: .zero, round: 0))
        follower.deliver(Self.installSnapshot(Snapshot(metadata: newer.metadata, data: [7]), offset: 0, done: false))
        ready = follower.cycle()
        #expect(ready.snapshotChunks.map(\.data) == [[7]])
        #expect(ready.messages.first?.installSnapshotResponse?.bytesReceived == 1)
    }

    /// §7: chunks are accepted only in order; a chunk that does not continue what the follower
    /// holds is refused with the offset it expects, and nothing is installed.
    @Test func section7_outOfOrderChunkRefused() {
        var follower = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 2)))
        let whole = Self.snapshot(index: 5, term: 2, data: [0, 1, 2, 3, 4, 5])
        let first = Snapshot(metadata: whole.metadata, data: [0, 1, 2])
        let second = Snapshot(metadata: whole.metadata, data: [3, 4, 5])
        follower.deliver(Self.installSnapshot(second, offset: 3, done: true))
        var ready = follower.cycle()
        #expect(ready.snapshot == nil)
        #expect(ready.snapshotChunks.isEmpty, "a refused chunk is not handed to the driver")
        #expect(ready.messages.first?.installSnapshotResponse?.bytesReceived == 0)
        #expect(ready.messages.first?.installSnapshotResponse?.installed == false)
        follower.deliver(Self.installSnapshot(first, offset: 0, done: false))
        ready = follower.cycle()
        #expect(ready.snapshot == nil)
        #expect(ready.messages.first?.installSnapshotResponse?.bytesReceived == 3)
        #expect(ready.snapshotChunks.map(\.data) == [[0, 1, 2]])
        follower.deliver(Self.installSnapshot(second, offset: 3, done: true))
        ready = follower.cycle()
        #expect(ready.snapshot?.metadata == whole.metadata)
        #expect(ready.snapshotChunks.map(\.data) == [[3, 4, 5]])
        #expect(follower.status.snapshotIndex == 5)
    }

    /// A transfer describes the state as of the leader's applied index when it starts (that is
    /// the state the driver reads), not the older compaction point; and while it is under way the
    /// leader's compaction stops short of it, so the follower finds the entries that follow.
    @Test func transferStartsAtAppliedIndexAndHoldsCompaction() throws {
        var cluster = Cluster(voters: [n1, n2, n3]) {
            $0.snapshotChunkBytes = 2
            $0.compactionHoldEntriesMax = 0
        }
        cluster.elect(n1)
        cluster.isolate(n3)
        for index in 0..<3 { cluster.propose(n1, "a\(index)") }
        cluster.deliverAll()
        let compactedFirst = cluster.compact(n1, data: bytes("0123456789"))
        let first = try #require(compactedFirst)
        for index in 0..<2 { cluster.propose(n1, "b\(index)") }
        cluster.deliverAll()
        cluster.tick()
        let applied = cluster[n1].log.applied
        #expect(applied > first.metadata.lastIncludedIndex)
        // n3 comes back and gets two chunks; then the chunks stop (their answers still flow).
        var chunksLeft = 2
        cluster.heal()
        cluster.dropIf = { message in
            guard message.to == n3, message.installSnapshot != nil else { return false }
            chunksLeft -= 1
            return chunksLeft < 0
        }
        var requests: [InstallSnapshot] = []
        for _ in 0..<30 where requests.count < 2 {
            cluster.tick()
            requests = cluster.delivered.compactMap { $0.to == n3 ? $0.installSnapshot : nil }
        }
        #expect(requests.count == 2)
        #expect(cluster.leaders == [n1])
        #expect(requests.first?.metadata.lastIncludedIndex == applied, "the state as of the applied index")
        cluster.propose(n1, "c")
        cluster.deliverAll()
        cluster.tick()
        #expect(cluster[n1].log.applied > applied)
        let compactedAgain = cluster.compact(n1, data: bytes("later"))
        let held = try #require(compactedAgain)
        #expect(held.metadata.lastIncludedIndex == applied, "compaction stops at the snapshot being sent")
        // Once chunks flow again the follower installs it and catches up from the log.
        cluster.dropIf = { _ in false }
        cluster.stateBytes[n1] = bytes("0123456789")
        cluster.tick(30)
        #expect(cluster.installedSnapshots[n3]?.last?.metadata.lastIncludedIndex == applied)
        #expect(cluster[n3].log.applied == cluster[n1].log.applied, "the entries after the snapshot were still there")
        #expect(cluster.appliedCommands(n3) == ["c"])
    }

    /// A leader keeps the entries a follower that answers but lags still needs, up to
    /// `compactionHoldEntriesMax` of them, so that it catches up from the log, not by snapshot.
    @Test(arguments: [(100, true), (2, false)] as [(Int, Bool)])
    func leaderHoldsLogForLaggingFollower(holdMax: Int, catchesUpFromLog: Bool) throws {
        var cluster = Cluster(voters: [n1, n2, n3]) { $0.compactionHoldEntriesMax = holdMax }
        cluster.elect(n1)
        let lagging = cluster.lastIndex(n3)
        // n3 answers heartbeats but its appends are lost: it lags behind while answering.
        cluster.dropIf = { $0.to == n3 && ($0.appendEntries?.entries.isEmpty == false) }
        for index in 0..<8 { cluster.propose(n1, "e\(index)") }
        cluster.deliverAll()
        cluster.tick()
        let compacted = cluster.compact(n1, data: bytes("state"))
        let snapshot = try #require(compacted)
        if catchesUpFromLog {
            #expect(snapshot.metadata.lastIncludedIndex == lagging, "held at the follower's match index")
        } else {
            #expect(snapshot.metadata.lastIncludedIndex > lagging, "held by at most compactionHoldEntriesMax")
        }
        cluster.dropIf = { _ in false }
        cluster.tick(30)
        #expect(cluster[n3].log.applied == cluster[n1].log.applied)
        #expect((cluster.installedSnapshots[n3] ?? []).isEmpty == catchesUpFromLog)
    }
}
