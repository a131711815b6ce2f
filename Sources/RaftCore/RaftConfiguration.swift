/// Every tunable of one Raft node, each with a default and validated by `validate()`.
/// Times are in ticks: the driver decides how long a tick is (kvd uses `heartbeat-ms`).
public struct RaftConfiguration: Hashable, Sendable {
    /// This node's identity.
    public var id: NodeID
    /// Minimum election timeout; each follower draws its timeout uniformly from
    /// `[electionTimeoutTicks, 2 * electionTimeoutTicks)` so that split votes are rare (§5.2).
    public var electionTimeoutTicks: Int = 10
    /// How often a leader sends heartbeats; must be well below the election timeout.
    public var heartbeatIntervalTicks: Int = 1
    /// Run a pre-election round first so that a partitioned server cannot disrupt the cluster
    /// with a higher term when it returns (thesis §9.6).
    public var preVote: Bool = true
    /// A leader steps down if it has not heard from a quorum within an election timeout, and
    /// followers that heard from a leader within that time ignore vote requests (thesis §6.2, §4.2.3).
    public var checkQuorum: Bool = true
    /// Most entries in one AppendEntries message.
    public var entriesPerAppendMax: Int = 256
    /// Most entry bytes in one AppendEntries message (a single larger entry is still sent alone).
    public var bytesPerAppendMax: Int = 1 << 20
    /// Most AppendEntries messages in flight to one follower in replicate mode.
    public var inflightMessagesMax: Int = 64
    /// Most bytes of proposed entries a leader holds uncommitted before refusing new proposals.
    public var uncommittedBytesMax: Int = 64 << 20
    /// Bytes of snapshot data in one InstallSnapshot chunk.
    public var snapshotChunkBytes: Int = 1 << 20
    /// Most committed entries handed to the application in one `Ready`.
    public var applyEntriesPerReadyMax: Int = 1024
    /// Most reads a leader holds while waiting for leadership confirmation.
    public var pendingReadsMax: Int = 4096
    /// Most entries a leader keeps in its log beyond the point its application asked to compact
    /// at, for followers that answer but lag behind (or are installing a snapshot): they catch up
    /// from the log instead of needing a snapshot, and a follower installing a snapshot finds the
    /// entries that follow it. Bounds the memory this costs (the log is held in memory).
    public var compactionHoldEntriesMax: Int = 200_000
    /// Ticks between the campaigns of followers that learn together that their leader is gone
    /// (`peerUnreachable`): the first voter in id order campaigns at once, the next one this many
    /// ticks later, and so on, so that they do not split the vote. Must leave room for a
    /// pre-vote round trip; a stagger that reaches the election timeout falls back to it.
    public var leaderLossStaggerTicks: Int = 2

    public init(id: NodeID) { self.id = id }

    /// Checks every setting and names the first one that is out of range.
    public func validate() throws(ConfigurationError) {
        if id.rawValue == 0 { throw .invalid("id must not be 0") }
        if heartbeatIntervalTicks < 1 { throw .invalid("heartbeatIntervalTicks must be at least 1") }
        if electionTimeoutTicks <= heartbeatIntervalTicks {
            throw .invalid("electionTimeoutTicks (\(electionTimeoutTicks)) must exceed heartbeatIntervalTicks (\(heartbeatIntervalTicks))")
        }
        if entriesPerAppendMax < 1 { throw .invalid("entriesPerAppendMax must be at least 1") }
        if bytesPerAppendMax < 1 { throw .invalid("bytesPerAppendMax must be at least 1") }
        if inflightMessagesMax < 1 { throw .invalid("inflightMessagesMax must be at least 1") }
        if uncommittedBytesMax < 1 { throw .invalid("uncommittedBytesMax must be at least 1") }
        if snapshotChunkBytes < 1 { throw .invalid("snapshotChunkBytes must be at least 1") }
        if applyEntriesPerReadyMax < 1 { throw .invalid("applyEntriesPerReadyMax must be at least 1") }
        if pendingReadsMax < 1 { throw .invalid("pendingReadsMax must be at least 1") }
        if compactionHoldEntriesMax < 0 { throw .invalid("compactionHoldEntriesMax must not be negative") }
        if leaderLossStaggerTicks < 1 { throw .invalid("leaderLossStaggerTicks must be at least 1") }
    }
}

/// A configuration or initial state that a node cannot start with.
public enum ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let reason): return "invalid Raft configuration: \(reason)"
        }
    }
}

/// Why a proposal, membership change, read or transfer was refused. All of these are definite:
/// nothing was appended to the log.
public enum ProposalError: Error, Hashable, Sendable, CustomStringConvertible {
    /// This node is not the leader; `leaderHint` is the leader it knows of, if any.
    case notLeader(leaderHint: NodeID?)
    /// A leadership transfer is under way; retry at the new leader.
    case leadershipTransferInProgress(target: NodeID)
    /// The leader holds `uncommittedBytesMax` of uncommitted entries; retry later.
    case uncommittedBytesLimit
    /// Another membership change is not committed yet, or this term's no-op is not committed.
    case membershipChangePending
    /// The requested change does not make sense for the current membership.
    case invalidMembershipChange(String)
    /// A learner must catch up before it is promoted.
    case learnerNotCaughtUp(NodeID)
    /// Too many reads are waiting for leadership confirmation.
    case tooManyPendingReads

    public var description: String {
        switch self {
        case .notLeader(let hint): return "not the leader (leader: \(hint.map(\.description) ?? "unknown"))"
        case .leadershipTransferInProgress(let target): return "leadership transfer to \(target) in progress"
        case .uncommittedBytesLimit: return "too many uncommitted bytes; retry later"
        case .membershipChangePending: return "a membership change is pending"
        case .invalidMembershipChange(let why): return "invalid membership change: \(why)"
        case .learnerNotCaughtUp(let id): return "learner \(id) has not caught up"
        case .tooManyPendingReads: return "too many pending reads"
        }
    }
}

/// A message that no correct peer would send (bad indexes, non-contiguous entries, a term in the
/// future of the message). The driver logs it and drops it; node state is unchanged.
public enum StepError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidMessage(String)
    public var description: String {
        switch self {
        case .invalidMessage(let why): return "invalid Raft message: \(why)"
        }
    }
}
