/// A message between two Raft servers. Every message carries the sender's term (§5.1): a
/// server that sees a higher term adopts it, and messages from lower terms are refused.
public struct Message: Hashable, Sendable {
    public var from: NodeID
    public var to: NodeID
    public var term: Term
    public var body: Body

    public init(from: NodeID, to: NodeID, term: Term, body: Body) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }

    /// The RPCs of Figure 2 and §7, plus PreVote, TimeoutNow, follower ReadIndex (thesis §6.4)
    /// and proposals a follower forwards to its leader.
    public enum Body: Hashable, Sendable {
        case requestVote(RequestVote)
        case requestVoteResponse(RequestVoteResponse)
        case appendEntries(AppendEntries)
        case appendEntriesResponse(AppendEntriesResponse)
        case installSnapshot(InstallSnapshot)
        case installSnapshotResponse(InstallSnapshotResponse)
        /// Sent by a leader transferring leadership: start an election now (thesis §3.10).
        case timeoutNow
        /// A follower asks the leader for a read index on behalf of one of its clients.
        case readIndexRequest(ReadIndexRequest)
        case readIndexResponse(ReadIndexResponse)
        /// A follower passes a client's command to the leader, which appends it as if proposed
        /// there. An accepted command is not acknowledged: the follower learns the outcome by
        /// applying the log (the command carries its own tag; docs/PROTOCOL.md, "Followers").
        case forwardedProposal(ForwardedProposal)
        /// The receiver of a forwarded proposal did not append it and never will.
        case forwardedProposalRefused(ForwardedProposalRefusal)
    }
}

/// RequestVote (Figure 2), also used for PreVote when `isPreVote` is set. A pre-vote carries the
/// term the candidate would use (`currentTerm + 1`) but changes no state on either side.
public struct RequestVote: Hashable, Sendable {
    public var lastLogIndex: LogIndex
    public var lastLogTerm: Term
    public var isPreVote: Bool
    /// Set when the election was started by TimeoutNow: voters then ignore their leader lease.
    public var isLeadershipTransfer: Bool

    public init(lastLogIndex: LogIndex, lastLogTerm: Term, isPreVote: Bool, isLeadershipTransfer: Bool) {
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.isPreVote = isPreVote
        self.isLeadershipTransfer = isLeadershipTransfer
    }
}

public struct RequestVoteResponse: Hashable, Sendable {
    public var voteGranted: Bool
    public var isPreVote: Bool

    public init(voteGranted: Bool, isPreVote: Bool) {
        self.voteGranted = voteGranted
        self.isPreVote = isPreVote
    }
}

/// AppendEntries (Figure 2). With no entries it is a heartbeat. `round` numbers the leader's
/// broadcasts so that a response proves the follower still followed this leader after a read
/// was registered (ReadIndex, thesis §6.4).
public struct AppendEntries: Hashable, Sendable {
    public var prevLogIndex: LogIndex
    public var prevLogTerm: Term
    public var entries: [Entry]
    public var leaderCommit: LogIndex
    public var round: UInt64

    public init(prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], leaderCommit: LogIndex, round: UInt64) {
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.leaderCommit = leaderCommit
        self.round = round
    }
}

/// The answer to AppendEntries. On success `matchIndex` is the last index known to match the
/// leader. On a consistency-check failure the conflict hints let the leader skip a whole
/// conflicting term per round trip instead of one entry (§5.3, "fast backtracking").
public struct AppendEntriesResponse: Hashable, Sendable {
    public var success: Bool
    public var matchIndex: LogIndex
    /// The `prevLogIndex` of the request this answers, so stale rejections can be recognised.
    public var rejectedIndex: LogIndex
    /// The term of the follower's entry at `rejectedIndex`, or nil if its log is shorter.
    public var conflictTerm: Term?
    /// The first index the follower holds for `conflictTerm`, or its last index + 1.
    public var conflictIndex: LogIndex
    public var round: UInt64

    public init(
        success: Bool, matchIndex: LogIndex, rejectedIndex: LogIndex = .zero, conflictTerm: Term? = nil,
        conflictIndex: LogIndex = .zero, round: UInt64
    ) {
        self.success = success
        self.matchIndex = matchIndex
        self.rejectedIndex = rejectedIndex
        self.conflictTerm = conflictTerm
        self.conflictIndex = conflictIndex
        self.round = round
    }
}

/// One chunk of InstallSnapshot (§7). Chunks are sent in order; `offset` is where `data` starts.
/// RaftCore emits it with empty `data` and `done` false: the leader's driver fills both with the
/// chunk of the state as of `metadata.lastIncludedIndex` that starts at `offset`.
public struct InstallSnapshot: Hashable, Sendable {
    public var metadata: SnapshotMetadata
    public var offset: Int
    public var data: [UInt8]
    public var done: Bool
    public var round: UInt64

    public init(metadata: SnapshotMetadata, offset: Int, data: [UInt8], done: Bool, round: UInt64) {
        self.metadata = metadata
        self.offset = offset
        self.data = data
        self.done = done
        self.round = round
    }
}

/// The answer to one InstallSnapshot chunk: how many bytes of that snapshot the follower now
/// holds (the offset of the next chunk it expects), and whether it installed the snapshot.
public struct InstallSnapshotResponse: Hashable, Sendable {
    public var lastIncludedIndex: LogIndex
    public var lastIncludedTerm: Term
    public var bytesReceived: Int
    public var installed: Bool
    /// On `installed`, the follower's last log index after the install.
    public var matchIndex: LogIndex
    public var round: UInt64

    public init(
        lastIncludedIndex: LogIndex, lastIncludedTerm: Term, bytesReceived: Int, installed: Bool,
        matchIndex: LogIndex, round: UInt64
    ) {
        self.lastIncludedIndex = lastIncludedIndex
        self.lastIncludedTerm = lastIncludedTerm
        self.bytesReceived = bytesReceived
        self.installed = installed
        self.matchIndex = matchIndex
        self.round = round
    }
}

/// Identifies one read request across nodes; chosen by the node's driver and unique per node.
public struct ReadRequestID: Hashable, Sendable, CustomStringConvertible {
    public var origin: NodeID
    public var sequence: UInt64

    public init(origin: NodeID, sequence: UInt64) {
        self.origin = origin
        self.sequence = sequence
    }

    public var description: String { "\(origin).\(sequence)" }
}

public struct ReadIndexRequest: Hashable, Sendable {
    public var id: ReadRequestID
    public init(id: ReadRequestID) { self.id = id }
}

/// A client command a follower sends to its leader (`RaftNode.forwardProposal(_:id:)`). `id` is
/// the follower's, unique among its forwards, and only echoed in a refusal.
public struct ForwardedProposal: Hashable, Sendable {
    public var id: UInt64
    public var command: [UInt8]
    public init(id: UInt64, command: [UInt8]) {
        self.id = id
        self.command = command
    }
}

/// Why a forwarded proposal was not appended: the command definitely did not take effect.
public struct ForwardedProposalRefusal: Hashable, Sendable {
    public var id: UInt64
    public var reason: Reason

    public init(id: UInt64, reason: Reason) {
        self.id = id
        self.reason = reason
    }

    public enum Reason: Hashable, Sendable {
        /// The receiver does not lead (it names the leader it knows, if any).
        case notLeader(leaderHint: NodeID?)
        /// The leader is handing leadership to `target` (thesis §3.10).
        case leadershipTransfer(target: NodeID)
        /// The leader holds `uncommittedBytesMax` of uncommitted entries.
        case uncommittedBytesLimit
    }
}

/// The leader's answer to a follower's read: the index to wait for, or nil if it refused
/// (it was not able to serve reads, for example while transferring leadership).
public struct ReadIndexResponse: Hashable, Sendable {
    public var id: ReadRequestID
    public var readIndex: LogIndex?
    public init(id: ReadRequestID, readIndex: LogIndex?) {
        self.id = id
        self.readIndex = readIndex
    }
}
