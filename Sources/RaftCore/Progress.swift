/// A leader's view of one follower (Figure 2's `nextIndex` and `matchIndex`) plus flow control,
/// after etcd-io/raft: a follower is probed one message at a time until its log position is
/// known, then replicated to with up to `inflightMessagesMax` pipelined messages, or sent a
/// snapshot when the entries it needs are compacted away.
struct Progress: Sendable {
    /// Highest index known to be replicated on this follower.
    var matchIndex: LogIndex
    /// Index of the next entry to send.
    var nextIndex: LogIndex
    var mode: Mode
    /// Last indexes of the AppendEntries messages in flight, oldest first.
    var inflight: [LogIndex] = []
    /// Whether the follower answered since the last CheckQuorum round.
    var recentlyActive = false
    /// The leader's tick (`ticksElapsed`) when the follower last answered, or when it started to
    /// be tracked: CheckQuorum counts it as heard from for an election timeout after that.
    var lastHeardTick: UInt64
    /// Set when the follower installed a snapshot, until it has caught up with the commit index:
    /// the leader keeps every entry it still needs, however many (see `RaftNode.compact(at:)`).
    var catchingUpFromSnapshot = false
    /// Highest broadcast round this follower acknowledged (for ReadIndex).
    var ackedRound: UInt64 = 0
    /// In probe mode: a message is out and unanswered since the last heartbeat.
    var probeSent = false
    /// Leader ticks with messages in flight and no progress; see `detectStalledPipelines`.
    var stalledTicks = 0
    /// The commit index carried by the last message sent to this follower.
    var announcedCommit: LogIndex = .zero
    /// The driver reported the follower unreachable (its connection ended) and it has not answered
    /// since: no leadership hand-over goes to it.
    var reportedUnreachable = false

    enum Mode: Sendable, Equatable {
        /// Position unknown: one message at a time.
        case probe
        /// Position known: pipeline up to the in-flight limit.
        case replicate
        /// Sending a snapshot; `offset` is the next chunk's start, `sent` whether a chunk is out.
        case snapshot(SnapshotTransfer)
    }

    struct SnapshotTransfer: Sendable, Equatable {
        var lastIncludedIndex: LogIndex
        var lastIncludedTerm: Term
        var offset: Int
        var chunkOutstanding: Bool
        /// The heartbeat round in which the outstanding chunk was asked for.
        var sentRound: UInt64 = 0
        /// Whether the snapshot this transfer sends is decided: from the first chunk request on,
        /// the driver reads that state, so resends must name the same one.
        var pinned = false
    }

    init(matchIndex: LogIndex, nextIndex: LogIndex, trackedSinceTick: UInt64) {
        self.lastHeardTick = trackedSinceTick
        self.matchIndex = matchIndex
        self.nextIndex = nextIndex
        self.mode = .probe
    }

    /// Whether another AppendEntries may be sent now.
    func canSend(inflightMax: Int) -> Bool {
        switch mode {
        case .probe: return !probeSent
        case .replicate: return inflight.count < inflightMax
        case .snapshot: return false
        }
    }

    /// Records that entries up to `lastIndex` were sent.
    mutating func sent(through lastIndex: LogIndex, entryCount: Int) {
        switch mode {
        case .probe:
            probeSent = true
        case .replicate:
            if entryCount > 0 {
                inflight.append(lastIndex)
                nextIndex = lastIndex.next
            }
        case .snapshot:
            break
        }
    }

    /// A successful response: the follower holds everything up to `index`. Returns whether the
    /// match index moved.
    mutating func acknowledge(_ index: LogIndex) -> Bool {
        inflight.removeAll { $0 <= index }
        let moved = index > matchIndex
        if moved {
            matchIndex = index
            stalledTicks = 0
        }
        switch mode {
        case .probe:
            // The follower's position is now known: pipeline from just after it.
            mode = .replicate
            probeSent = false
            nextIndex = matchIndex.next
        case .replicate:
            nextIndex = max(nextIndex, matchIndex.next)
        case .snapshot:
            break
        }
        return moved
    }

    /// A rejection: fall back to probing from `next`.
    mutating func backtrack(to next: LogIndex) {
        nextIndex = max(matchIndex.next, next)
        mode = .probe
        inflight.removeAll()
        probeSent = false
        stalledTicks = 0
    }

    /// Switches to snapshot transfer from offset zero.
    mutating func startSnapshot(_ metadata: SnapshotMetadata) {
        catchingUpFromSnapshot = false
        inflight.removeAll()
        probeSent = false
        mode = .snapshot(
            SnapshotTransfer(
                lastIncludedIndex: metadata.lastIncludedIndex, lastIncludedTerm: metadata.lastIncludedTerm,
                offset: 0, chunkOutstanding: false))
    }

    /// After an installed snapshot the follower's log ends at `index`: probe from there.
    mutating func finishSnapshot(matchIndex index: LogIndex) {
        catchingUpFromSnapshot = true
        matchIndex = max(matchIndex, index)
        nextIndex = matchIndex.next
        mode = .probe
        probeSent = false
    }
}
