/// Everything a node asks its driver to do, in one batch. The driver MUST handle a `Ready` in
/// this order, and call nothing else on the node until `advance(_:)`:
///
/// 1. Persist: write `snapshotChunks` in order to the snapshot being received (a chunk at offset
///    zero starts a new one; the bytes are the leader driver's, RaftCore only checks offsets).
///    If `snapshot` is set, the last chunk is in: install the received state (durably) and store
///    the snapshot's metadata (it replaces all entries up to its last included index); then write `entries` — entry `i` replaces any stored entry with the same index and
///    everything after it — then `hardState` if set. When `mustSync` is true the write must be
///    durable (fsync) before step 2; a crash after a non-durable write may lose it, which is
///    safe because such a write never carries a new term, vote or entry.
/// 2. Send `messages`. They may depend on step 1 (a vote, an acknowledgement of entries), which
///    is why they must not leave before it.
/// 3. If `snapshot` is set, the state machine must now be the received state; then apply `committedEntries`
///    in order. Every committed entry is already durable by then (committed entries are never
///    newer than what step 1 wrote).
/// 4. Answer `readStates`: a read with index `i` may be served once the applied index is at
///    least `i`; a failed read must be retried elsewhere (it did nothing).
/// 5. Call `advance(_:)` with this `Ready`.
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
    /// Messages to send after persisting.
    public var messages: [Message]
    /// Committed entries to apply, in order.
    public var committedEntries: [Entry]
    /// Outcomes of read requests made on this node.
    public var readStates: [ReadState]
    /// Whether the persisted part must be fsynced before sending (a new term, vote, entries or
    /// snapshot are at stake). False when only the commit index changed.
    public var mustSync: Bool

    /// True when there is nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty && committedEntries.isEmpty
            && readStates.isEmpty && snapshotChunks.isEmpty
    }

    public init(
        hardState: HardState? = nil, entries: [Entry] = [], snapshotChunks: [InstallSnapshot] = [],
        snapshot: Snapshot? = nil, messages: [Message] = [],
        committedEntries: [Entry] = [], readStates: [ReadState] = [], mustSync: Bool = false
    ) {
        self.hardState = hardState
        self.entries = entries
        self.snapshotChunks = snapshotChunks
        self.snapshot = snapshot
        self.messages = messages
        self.committedEntries = committedEntries
        self.readStates = readStates
        self.mustSync = mustSync
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
