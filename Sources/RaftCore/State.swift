/// The state every server must make durable before answering RPCs (Figure 2), plus the commit
/// index, which is persisted so that a restarted server can apply without waiting for a leader.
public struct HardState: Hashable, Sendable {
    /// Latest term this server has seen.
    public var currentTerm: Term
    /// The candidate that received this server's vote in `currentTerm`, if any.
    public var votedFor: NodeID?
    /// Highest index known to be committed. Persisting it is an optimisation, never a safety need.
    public var commitIndex: LogIndex

    public init(currentTerm: Term = .zero, votedFor: NodeID? = nil, commitIndex: LogIndex = .zero) {
        self.currentTerm = currentTerm
        self.votedFor = votedFor
        self.commitIndex = commitIndex
    }
}

/// What describes a snapshot: the last entry it replaces and the membership as of that entry.
public struct SnapshotMetadata: Hashable, Sendable {
    public var lastIncludedIndex: LogIndex
    public var lastIncludedTerm: Term
    public var membership: ClusterMembership

    public init(lastIncludedIndex: LogIndex, lastIncludedTerm: Term, membership: ClusterMembership) {
        self.lastIncludedIndex = lastIncludedIndex
        self.lastIncludedTerm = lastIncludedTerm
        self.membership = membership
    }
}

/// A state-machine snapshot (§7): opaque bytes produced by the application plus the metadata
/// that lets the log before it be discarded.
public struct Snapshot: Hashable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

/// Everything a server reads back from stable storage when it restarts.
public struct PersistentState: Hashable, Sendable {
    public var hardState: HardState
    /// The latest snapshot, if the log has ever been compacted or a snapshot installed.
    public var snapshot: Snapshot?
    /// The log entries after the snapshot, contiguous and in index order.
    public var entries: [Entry]

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}

/// The role a server plays (§5.1), with PreVote's pre-candidate stage (thesis §9.6).
public enum RaftRole: String, Hashable, Sendable {
    case follower
    case preCandidate
    case candidate
    case leader
}

/// A read-only view of a node, for drivers, metrics and tests.
public struct RaftStatus: Hashable, Sendable {
    public var id: NodeID
    public var role: RaftRole
    public var currentTerm: Term
    public var votedFor: NodeID?
    public var leaderID: NodeID?
    public var commitIndex: LogIndex
    public var appliedIndex: LogIndex
    public var lastLogIndex: LogIndex
    public var lastLogTerm: Term
    public var snapshotIndex: LogIndex
    public var membership: ClusterMembership
    /// The node a leadership transfer is under way to, on a leader.
    public var transferTarget: NodeID?
}
