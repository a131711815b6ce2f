import Testing

@testable import RaftCore

/// Bad configuration and malformed messages: refused up front, leaving the node unchanged.
@Suite struct PaperValidationTests {
    /// A configuration with `setting` set to `value` (and its partner setting, for the two tick
    /// counts that constrain each other, set so that only `setting` decides).
    static func configuration(_ setting: String, _ value: Int) -> RaftConfiguration {
        var c = RaftConfiguration(id: 1)
        switch setting {
        case "id": c.id = NodeID(UInt64(value))
        case "heartbeatIntervalTicks":
            c.heartbeatIntervalTicks = value
            c.electionTimeoutTicks = 2
        case "electionTimeoutTicks":
            c.heartbeatIntervalTicks = 3
            c.electionTimeoutTicks = value
        case "entriesPerAppendMax": c.entriesPerAppendMax = value
        case "bytesPerAppendMax": c.bytesPerAppendMax = value
        case "inflightMessagesMax": c.inflightMessagesMax = value
        case "uncommittedBytesMax": c.uncommittedBytesMax = value
        case "snapshotChunkBytes": c.snapshotChunkBytes = value
        case "applyEntriesPerReadyMax": c.applyEntriesPerReadyMax = value
        case "pendingReadsMax": c.pendingReadsMax = value
        default: Issue.record("unknown setting \(setting)")
        }
        return c
    }

    /// Every setting of `RaftConfiguration` at the edge of its range: the smallest valid value
    /// passes, the one below it fails naming the setting, and no node starts with it.
    @Test(arguments: [
        ("id", 0), ("heartbeatIntervalTicks", 0), ("electionTimeoutTicks", 3), ("entriesPerAppendMax", 0),
        ("bytesPerAppendMax", 0), ("inflightMessagesMax", 0), ("uncommittedBytesMax", 0), ("snapshotChunkBytes", 0),
        ("applyEntriesPerReadyMax", 0), ("pendingReadsMax", 0),
    ])
    func configurationValidateEdges(setting: String, firstInvalid: Int) {
        let bad = Self.configuration(setting, firstInvalid)
        var message = ""
        do { try bad.validate() } catch { message = error.description }
        #expect(message.contains(setting), "\(setting): \(message)")
        let good = Self.configuration(setting, firstInvalid + 1)
        #expect(throws: Never.self) { try good.validate() }
        #expect(throws: ConfigurationError.self) {
            _ = try RaftNode(configuration: bad, state: PersistentState(), bootstrap: ClusterMembership(voters: [1]), seed: 1)
        }
    }

    /// The defaults are valid.
    @Test func defaultConfigurationIsValid() {
        #expect(throws: Never.self) { try RaftConfiguration(id: 7).validate() }
    }

    /// A stored log with a gap or a decreasing term is refused at start.
    @Test func corruptStoredLogRefused() {
        let gap = PersistentState(entries: [entry(1, term: 1), entry(3, term: 1)])
        let decreasing = PersistentState(entries: [entry(1, term: 2), entry(2, term: 1)])
        for state in [gap, decreasing] {
            #expect(throws: ConfigurationError.self) {
                _ = try RaftNode(configuration: RaftConfiguration(id: 1), state: state, bootstrap: ClusterMembership(voters: [1]), seed: 1)
            }
        }
    }

    /// A follower of n1 in term 2 holding [1, 2], used to check that bad messages change nothing.
    static func follower() -> RaftNode {
        var node = makeNode(n2, voters: [n1, n2, n3], state: PersistentState(hardState: HardState(currentTerm: 2), entries: logWithTerms([1, 2])))
        node.deliver(.append(from: n1, to: n2, term: 2, prevIndex: 2, prevTerm: 2))
        node.drainMessages()
        return node
    }

    static func snapshotMessage(offset: Int, index: UInt64, term: UInt64, messageTerm: UInt64 = 2) -> Message {
        Message(
            from: n1, to: n2, term: Term(messageTerm),
            body: .installSnapshot(
                InstallSnapshot(
                    metadata: SnapshotMetadata(
                        lastIncludedIndex: LogIndex(index), lastIncludedTerm: Term(term), membership: ClusterMembership(voters: [n1, n2, n3])),
                    offset: offset, data: [1], done: true, round: 0)))
    }

    /// StepError: messages no correct peer sends are refused with a reason and leave the node
    /// exactly as it was (no term, log, leader or output change).
    @Test(arguments: [
        ("wrong recipient", Message.append(from: n1, to: n3, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, term: 3)])),
        ("from itself", Message.append(from: n2, to: n2, term: 3, prevIndex: 2, prevTerm: 2)),
        ("from node 0", Message.requestVote(from: 0, to: n2, term: 3, lastIndex: 9, lastTerm: 3)),
        ("non-contiguous entries", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, term: 3), entry(5, term: 3)])),
        ("entries not after prevLogIndex", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(2, term: 3)])),
        ("entry term beyond message term", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, term: 4)])),
        ("entry terms decrease", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, term: 3), entry(4, term: 2)])),
        ("entry term below prevLogTerm", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 2, entries: [entry(3, term: 1)])),
        ("prevLogTerm beyond message term", Message.append(from: n1, to: n2, term: 3, prevIndex: 2, prevTerm: 4)),
        ("snapshot at index 0", Self.snapshotMessage(offset: 0, index: 0, term: 1)),
        ("negative snapshot offset", Self.snapshotMessage(offset: -1, index: 5, term: 2)),
        ("snapshot term beyond message term", Self.snapshotMessage(offset: 0, index: 5, term: 3)),
    ])
    func stepErrorLeavesFollowerUnchanged(reason: String, message: Message) {
        var node = Self.follower()
        let before = node.status
        let entriesBefore = node.entries
        #expect(throws: StepError.self, "\(reason)") { try node.step(message) }
        #expect(node.status == before, "\(reason)")
        #expect(node.entries == entriesBefore, "\(reason)")
        #expect(!node.hasReady, "\(reason)")
    }

    /// StepError on a leader: AppendEntries from another node in the leader's own term (two
    /// leaders in one term would break Election Safety) and an acknowledgement of an index the
    /// leader never had.
    @Test func stepErrorLeavesLeaderUnchanged() {
        var leader = makeNode(n1, voters: [n1, n2, n3])
        leader.becomeLeaderForTest()
        let before = leader.status
        let bad = [
            Message.append(from: n2, to: n1, term: 1, prevIndex: 0, prevTerm: 0),
            Message.appendResponse(from: n2, to: n1, term: 1, match: 9),
            Message(
                from: n2, to: n1, term: 1,
                body: .installSnapshotResponse(
                    InstallSnapshotResponse(lastIncludedIndex: 1, lastIncludedTerm: 1, bytesReceived: -1, installed: false, matchIndex: 0, round: 0))),
        ]
        for message in bad {
            #expect(throws: StepError.self) { try leader.step(message) }
            #expect(leader.status == before)
            #expect(leader.isLeader)
            #expect(leader.leaderState?.progress[n2]?.matchIndex == 0)
            #expect(!leader.hasReady)
        }
    }
}
