/// Everything a node asks its driver to do, in one batch. The driver MUST handle a `Ready` in
/// this order, and call nothing else on the node until `advance(_:)`:
///
/// 0. Send `messagesBeforePersist`. They may leave before step 1 starts, so that followers
///    write a leader's new entries while the leader writes them too (thesis §10.2.1): a commit
///    then waits for the slower of two parallel fsyncs instead of two in a row. They are only a
///    leader's replication traffic in a term that is already durable, and none of them vouches
///    for what step 1 writes: the leader counts its own log toward commitment only once
///    `advance` confirms the write. Sending them later, with `messages`, is also correct.
/// 1. Persist: write `snapshotChunks` in order to the snapshot being received (a chunk at offset
///    zero starts a new one; the bytes are the leader driver's, RaftCore only checks offsets).
///    If `snapshot` is set, the last chunk is in: install the received state (durably) and store
///    the snapshot's metadata (it replaces all entries up to its last included index); then
///    write `entries` — entry `i` replaces any stored entry with the same index and everything
///    after it — then `hardState` if set. When `mustSync` is true the write must be durable
///    (fsync) before step 2; a crash after a non-durable write may lose it, which is safe
///    because such a write never carries a new term, vote or entry.
/// 2. Send `messages`. They may depend on step 1 (a vote, an acknowledgement of entries or of a
///    snapshot chunk, a new term), which is why they must not leave before it.
/// 3. If `snapshot` is set, the state machine must now be the received state; then apply
///    `committedEntries` in order. Every committed entry is already durable by then (committed
///    entries are never newer than what step 1 of this or an earlier `Ready` wrote: a leader
///    hears acknowledgements only after `advance`).
/// 4. Answer `readStates`: a read with index `i` may be served once the applied index is at
///    least `i`; a failed read must be retried elsewhere (it did nothing). Answer
///    `refusedForwards` too: those commands were not appended and never will be.
/// 5. Call `advance(_:)` with this `Ready`.
///
/// Steps 3 and 4 may instead come before step 1 when no snapshot is involved and every entry in
/// `committedEntries` is at or below `RaftNode.durableIndex` as read before `takeReady()`: those
/// entries are on this node's disk already, so their clients need not wait for this `Ready`'s
/// write of newer entries. Entries above it may be durable only once step 1 is done (a
/// follower's, or a leader's committed by its followers alone), and a state machine ahead of
/// its own log could not be brought back after a crash.
///
/// Invariant: when `hardState` changes the term or the vote, `messagesBeforePersist` is empty.
/// A message in term T that left before T was durable could let this node restart in an
/// earlier term, win T again and write a different entry at an index its first leadership of
/// T already sent: two entries with the same index and term, and Log Matching is lost.
public struct Ready: Sendable {
    /// Term, vote and commit index to persist, when they changed.
    public var hardState: HardState?
    /// Entries to append to stable storage, contiguous, possibly overwriting a suffix.
    public var entries: [Entry]
    /// Chunks of a snapshot being received, accepted in order, to write before sending messages
    /// (the acknowledgements among them say they were written).
    public var snapshotChunks: [InstallSnapshot]
    /// A snapshot received completely from the leader: install it. Its `data` is empty (the
    /// bytes came in `snapshotChunks`).
    public var snapshot: Snapshot?
    /// Messages that may be sent before persisting (step 0): a leader's AppendEntries,
    /// InstallSnapshot chunks and TimeoutNow in a term already durable. Empty whenever
    /// `hardState` changes the term or the vote.
    public var messagesBeforePersist: [Message]
    /// Messages to send only after persisting (step 2).
    public var messages: [Message]
    /// Committed entries to apply, in order.
    public var committedEntries: [Entry]
    /// Outcomes of read requests made on this node.
    public var readStates: [ReadState]
    /// Proposals this node forwarded that the receiver refused (answer their clients: they did
    /// not take effect).
    public var refusedForwards: [RefusedForward]
    /// Whether the persisted part must be fsynced before sending (a new term, vote, entries or
    /// snapshot are at stake). False when only the commit index changed.
    public var mustSync: Bool

    /// True when there is nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messagesBeforePersist.isEmpty && messages.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty && snapshotChunks.isEmpty && refusedForwards.isEmpty
    }

    public init(
        hardState: HardState? = nil, entries: [Entry] = [], snapshotChunks: [InstallSnapshot] = [],
        snapshot: Snapshot? = nil, messagesBeforePersist: [Message] = [], messages: [Message] = [],
        committedEntries: [Entry] = [], readStates: [ReadState] = [], refusedForwards: [RefusedForward] = [],
        mustSync: Bool = false
    ) {
        self.hardState = hardState
        self.entries = entries
        self.snapshotChunks = snapshotChunks
        self.snapshot = snapshot
        self.messagesBeforePersist = messagesBeforePersist
        self.messages = messages
        self.committedEntries = committedEntries
        self.readStates = readStates
        self.refusedForwards = refusedForwards
        self.mustSync = mustSync
    }
}

/// A forwarded proposal that was refused: `id` is the one given to `forwardProposal(_:id:)`.
public struct RefusedForward: Hashable, Sendable {
    public var id: UInt64
    public var error: ProposalError

    public init(id: UInt64, error: ProposalError) {
        self.id = id
        self.error = error
    }
}

/// The outcome of a ReadIndex request (thesis §6.4).
public struct ReadState: Hashable, Sendable {
    public var id: ReadRequestID
    public var outcome: Outcome

    public init(id: ReadRequestID, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    public enum Outcome: Hashable, Sendable {
        /// Serve the read once the applied index reaches this index.
        case ready(LogIndex)
        /// The read could not be confirmed here (leadership lost, no leader, refused); it had
        /// no effect and can be retried.
        case failed(ProposalError)
    }
}

extension Message {
    /// Whether this message may leave before the `Ready` that carries it is persisted (step 0 of
    /// `Ready`'s contract). Asked only in a `Ready` that changes neither term nor vote, so that
    /// `durableTerm` (the sender's current term) is already on its disk.
    func mayLeaveBeforePersist(durableTerm: Term) -> Bool {
        // Nothing in another term: a pre-vote request and a granted pre-vote carry a future one.
        guard term == durableTerm else { return false }
        switch body {
        case .appendEntries:
            // With entries or without (heartbeats, ReadIndex rounds, commit announcements): it
            // asks followers to store the leader's entries and vouches for nothing on the
            // leader's own disk. Should the leader crash before its write is durable, followers
            // may hold entries it lost: safe, because only the leader of this term creates its
            // entries and it cannot lead this term again (its term and its vote for itself are
            // durable). It counts its own copy toward commitment only after `advance`.
            return true
        case .installSnapshot:
            // A chunk of the leader's applied state: committed entries only, durable on a quorum
            // before they were applied, none of them written by this `Ready`.
            return true
        case .timeoutNow:
            // Sent once the target acknowledged the leader's whole log. Acknowledgements are
            // stepped only after `advance`, so every entry of that log was persisted by an earlier
            // `Ready`; the target's election depends on nothing this one writes.
            return true
        case .appendEntriesResponse, .installSnapshotResponse:
            // Acknowledgements of the entries or the chunk step 1 writes (Figure 2: persist before
            // responding). Refusals go with them: they are rare and gain nothing from leaving early.
            return false
        case .requestVote, .requestVoteResponse:
            // A vote, the candidate's for itself included, must be durable before anyone hears of
            // it (§5.1); pre-votes persist nothing but are no leader's replication either.
            return false
        case .readIndexRequest, .readIndexResponse, .forwardedProposal, .forwardedProposalRefused:
            // Not replication traffic; keeping the early set to replication keeps the rule small,
            // and a read's latency is dominated by its heartbeat round, not by this write.
            return false
        }
    }
}
