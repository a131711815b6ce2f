/// State that exists only while a node leads. It lives inside `RaftNode.Role.leader`, so a
/// follower cannot hold progress, pending reads or a transfer by mistake.
struct LeaderState: Sendable {
    /// Per-member replication progress; every member except the leader itself.
    var progress: [NodeID: Progress] = [:]
    var heartbeatElapsed = 0
    /// Number of the latest heartbeat broadcast (ReadIndex rounds, thesis §6.4).
    var round: UInt64 = 0
    /// Reads waiting for leadership confirmation or for this term's no-op to commit.
    var pendingReads: [PendingRead] = []
    /// A read is waiting for the next broadcast round.
    var readRoundPending = false
    /// New entries were appended; replicate them when the driver next takes a `Ready`, so
    /// that proposals made between two `Ready`s travel in one message (batching).
    var replicationPending = false
    /// The commit index advanced; tell followers at the next `Ready` rather than at the next
    /// heartbeat, so that they apply (and serve follower reads) one round trip sooner.
    var commitAnnouncementPending = false
    var transfer: Transfer?
    /// Bytes of command entries appended but not yet committed.
    var uncommittedBytes = 0
    /// Index of this term's no-op; reads wait until it commits (§8).
    var noopIndex: LogIndex = .zero
    /// Set by leader-only code that discovers the node must step down.
    var stepDownRequested: StepDownReason?

    struct Transfer: Sendable {
        var target: NodeID
        var elapsedTicks: Int
        var timeoutNowSent: Bool
    }

    struct PendingRead: Sendable {
        var id: ReadRequestID
        var requester: NodeID
        /// The broadcast round a quorum must acknowledge before the read is safe.
        var round: UInt64
        /// The commit index to serve at; nil until this term's no-op commits.
        var readIndex: LogIndex?
    }

    enum StepDownReason: Sendable {
        case lostQuorum
        case removedFromCluster
    }
}

/// Proof of a proposal's place in the log: it took effect if and only if the entry applied at
/// `index` has `term`.
public struct ProposalReceipt: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
}
