public import RaftCore

extension SplitMix64 {
    /// A value in `0..<bound` (bound > 0). The modulo bias is irrelevant for fault schedules.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    /// A value in `range`.
    mutating func within(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// True with probability `perMille / 1000`.
    mutating func chance(perMille: Int) -> Bool { below(1000) < perMille }

    /// One element of a non-empty array.
    mutating func pick<T>(_ elements: [T]) -> T? { elements.isEmpty ? nil : elements[below(elements.count)] }
}

/// Everything one seed decides before the run starts: cluster size, Raft limits and the fault
/// mix. Drawn from the seed alone, so `--seed S` replays the same cluster under the same faults.
public struct SimulationParameters: Sendable, CustomStringConvertible {
    /// Members at the start: 3 for even seeds, 5 for odd ones (all voters unless `votersMin` is 1).
    public var nodeCount: Int
    /// Extra server ids that start outside the cluster and may be added as learners.
    public var spareCount = 2
    /// The Raft configuration every server uses (its id filled in per server).
    public var raft: RaftConfiguration
    /// Ticks of the safety phase (faults on).
    public var safetyTicks: Int
    /// Message faults, in per mille of messages.
    public var lossPerMille: Int
    /// Messages delivered twice, in per mille.
    public var duplicatePerMille: Int
    /// Most ticks a message normally travels; a few messages are held much longer (reordering).
    public var delayMaxTicks: Int
    /// Messages held for up to three election timeouts, in per mille.
    public var longDelayPerMille: Int
    /// Chance per tick that some server crashes (between events or inside a `Ready`).
    public var crashPerMille: Int
    /// Chance per tick that some server is paused (not ticked, messages held) for 5–40 ticks.
    public var pausePerMille: Int
    /// Chance per tick that a partition starts when none is in force.
    public var partitionPerMille: Int
    /// Chance per tick of a membership change at a leader.
    public var membershipPerMille: Int
    /// Chance per tick of a leadership transfer.
    public var transferPerMille: Int
    /// Chance per tick of a client write.
    public var proposePerMille: Int
    /// Chance per tick of a ReadIndex read.
    public var readPerMille: Int
    /// Chance per tick, per server, of taking a snapshot and compacting the log.
    public var snapshotPerMille: Int
    /// Chance that a server which just granted a vote crashes before anything else happens.
    public var crashAfterVotePerMille: Int
    /// Chance that a newly elected leader crashes a few ticks later: before its no-op reaches a
    /// quorum, which is when committing an earlier term's entries by counting replicas (Figure 8)
    /// loses data.
    public var crashNewLeaderPerMille: Int
    /// Chance per tick that some server gets false evidence that a peer is unreachable (as from
    /// a connection that broke while the peer lives). Crashes always give true evidence to the
    /// servers that can reach the crashed one, as a kernel closing a dead process's sockets does.
    public var falseUnreachablePerMille: Int
    /// The fewest voters membership changes may leave: 3 in most seeds, 1 in some, which also
    /// start with a single voter (node 1) and the other members as learners. A single voter wins
    /// an election in the batch that starts it, so one `Ready` carries its new term together with
    /// its first AppendEntries to the learners: the case where a message sent before persisting
    /// could reveal a term that is not durable yet.
    public var votersMin: Int
    /// Chance that a (re)started server crashes in the first `Ready` whose messages leave before
    /// persisting (its first as a leader), right after they left: followers then hold entries the
    /// leader's disk lost, and a term sent before it was durable would show at its restart.
    public var crashBeforeLeaderPersistPerMille: Int

    /// Draws the parameters for `seed`.
    public init(seed: UInt64, safetyTicks: Int) {
        var random = SplitMix64(seed: seed ^ 0x5EED_0F_C0FFEE)
        nodeCount = seed % 2 == 0 ? 3 : 5
        var raft = RaftConfiguration(id: NodeID(1))
        raft.electionTimeoutTicks = 10
        raft.heartbeatIntervalTicks = random.within(1...3)
        // Small limits so that batching, pipelining, flow control and chunking all happen.
        raft.entriesPerAppendMax = random.within(1...4)
        raft.bytesPerAppendMax = random.within(70...200)
        raft.inflightMessagesMax = random.within(1...4)
        // At least four entries per round trip, so that a healed cluster catches up on any backlog
        // well within the liveness bound; one-entry messages and a one-message pipeline still occur.
        while raft.entriesPerAppendMax * raft.inflightMessagesMax < 4 { raft.inflightMessagesMax += 1 }
        raft.snapshotChunkBytes = random.within(8...64)
        raft.uncommittedBytesMax = random.within(200...2000)
        raft.applyEntriesPerReadyMax = random.within(1...6)
        raft.pendingReadsMax = random.within(2...16)
        raft.checkQuorum = random.chance(perMille: 850)
        raft.preVote = true
        self.raft = raft
        self.safetyTicks = safetyTicks
        lossPerMille = random.below(150)
        duplicatePerMille = random.below(80)
        delayMaxTicks = random.within(1...4)
        longDelayPerMille = random.below(40)
        crashPerMille = random.within(2...15)
        pausePerMille = random.below(8)
        partitionPerMille = random.within(2...12)
        membershipPerMille = random.below(25)
        transferPerMille = random.below(12)
        proposePerMille = random.within(100...600)
        readPerMille = random.within(50...400)
        snapshotPerMille = random.within(20...120)
        crashAfterVotePerMille = random.below(300)
        crashNewLeaderPerMille = random.below(400)
        // Drawn last, so that every earlier draw (and the scenarios of the kept seeds) is as it
        // was. Often zero or small: a leader that held its log for lagging followers would
        // rarely need InstallSnapshot in runs this short.
        self.raft.compactionHoldEntriesMax = random.chance(perMille: 500) ? 0 : random.within(1...30)
        self.raft.leaderLossStaggerTicks = random.within(1...3)
        falseUnreachablePerMille = random.below(30)
        votersMin = random.chance(perMille: 200) ? 1 : 3
        crashBeforeLeaderPersistPerMille = random.below(500)
    }

    /// One line naming every parameter, printed with failures.
    public var description: String {
        "nodes=\(nodeCount)+\(spareCount) spare, heartbeat=\(raft.heartbeatIntervalTicks) election=\(raft.electionTimeoutTicks) "
            + "entries/append=\(raft.entriesPerAppendMax) bytes/append=\(raft.bytesPerAppendMax) "
            + "inflight=\(raft.inflightMessagesMax) chunk=\(raft.snapshotChunkBytes) checkQuorum=\(raft.checkQuorum); "
            + "loss=\(lossPerMille)‰ dup=\(duplicatePerMille)‰ delay≤\(delayMaxTicks) long=\(longDelayPerMille)‰ "
            + "crash=\(crashPerMille)‰ pause=\(pausePerMille)‰ partition=\(partitionPerMille)‰ "
            + "membership=\(membershipPerMille)‰ transfer=\(transferPerMille)‰ snapshot=\(snapshotPerMille)‰ "
            + "crashAfterVote=\(crashAfterVotePerMille)‰ crashNewLeader=\(crashNewLeaderPerMille)‰ "
            + "crashBeforeLeaderPersist=\(crashBeforeLeaderPersistPerMille)‰ votersMin=\(votersMin)"
    }
}
