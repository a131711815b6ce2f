/// Log compaction and InstallSnapshot in chunks (§7).
///
/// RaftCore never holds snapshot bytes. The application's state is its own snapshot (its
/// durable store records the applied index with the data), so compaction only records where the
/// log may be cut. A transfer is a conversation about offsets: the leader asks its driver for
/// the chunk at an offset of "the state as of index N" (`InstallSnapshot` with empty `data`,
/// which the driver fills, and marks `done` on the last chunk, before sending); the follower
/// checks the offset, hands each accepted chunk to its driver in `Ready.snapshotChunks` and
/// acknowledges it after the driver wrote it; once the last chunk is in, `Ready.snapshot` tells
/// the driver to install what it received.
extension RaftNode {
    /// Records that the application's state up to `index` (at most the applied index) is durable
    /// and discards the log up to it. A leader stops short of what a follower that answered
    /// lately still needs: the snapshot it is being sent (so that the entries after it are still
    /// there when it is installed, and then until the follower has caught up), and its match index,
    /// but for that by at most `compactionHoldEntriesMax` entries (so that it catches up from the
    /// log). Returns the compaction point, which
    /// the driver must hand to `LogStorage.compact(to:)`; its `data` is empty.
    public mutating func compact(at index: LogIndex) -> Snapshot? {
        precondition(!readyOutstanding, "compact called between takeReady and advance")
        precondition(index <= log.applied, "cannot snapshot beyond the applied index \(log.applied)")
        var cut = index
        if let leader = leaderState {
            let floor = LogIndex(index.rawValue - min(index.rawValue, UInt64(configuration.compactionHoldEntriesMax)))
            // A follower that answered within the hold window (about ten seconds): a dead one
            // must not make the log grow; a busy one (writing a snapshot) must not lose it.
            let holdRounds = 20 * snapshotResendRounds
            for progress in leader.progress.values where leader.round &- progress.ackedRound <= holdRounds {
                switch progress.mode {
                case .snapshot(let transfer):
                    // Whatever it costs: without the entries after it, the snapshot being sent
                    // would be wasted and the follower would need another.
                    // (Once the follower took a chunk: one that never answered the transfer is not
                    // held for.)
                    if transfer.pinned, transfer.offset > 0 { cut = min(cut, transfer.lastIncludedIndex) }
                case .probe, .replicate:
                    // Just after installing a snapshot, all of it: the transfer took as long as it
                    // took, and a cut here would send the follower another.
                    cut = min(cut, progress.catchingUpFromSnapshot ? progress.matchIndex : max(progress.matchIndex, floor))
                }
            }
        }
        guard cut > log.snapshotIndex, let metadata = log.metadata(at: cut) else { return nil }
        log.compact(to: cut, term: metadata.lastIncludedTerm)
        return Snapshot(metadata: metadata, data: [])
    }

    /// The term and membership of the log at `index` (the applied index, or the snapshot's), for a
    /// backup of the state as of it; nil if the log no longer holds that entry.
    public func snapshotMetadata(at index: LogIndex) -> SnapshotMetadata? {
        log.metadata(at: index)
    }

    /// The leader's driver could not produce the chunk it was asked for (its read of the state
    /// failed, or it serves too many transfers at once): start `peer`'s transfer over, from
    /// offset zero and the state as of the applied index at the next attempt.
    public mutating func restartSnapshotTransfer(to peer: NodeID) {
        precondition(!readyOutstanding, "restartSnapshotTransfer called between takeReady and advance")
        guard let metadata = log.metadata(at: log.applied) else { return }
        withLeader { _, leader in
            guard var progress = leader.progress[peer], case .snapshot = progress.mode else { return }
            progress.startSnapshot(metadata)
            leader.progress[peer] = progress
        }
    }

    /// The follower's driver could not write the chunks of the snapshot being received (it did
    /// not send their acknowledgements): forget it, so that the leader's next chunk is refused
    /// and the transfer starts over from offset zero.
    public mutating func abandonIncomingSnapshot() {
        precondition(!readyOutstanding, "abandonIncomingSnapshot called between takeReady and advance")
        incomingSnapshot = nil
    }

    /// Asks the driver for the next chunk of the snapshot `peer` is receiving, unless one is
    /// already out. A new transfer describes the state as of the applied index now: that is the
    /// state the driver reads when it fills the first chunk; every later request names it again.
    mutating func sendSnapshotChunk(to peer: NodeID, _ leader: inout LeaderState) {
        guard var progress = leader.progress[peer], case .snapshot(var transfer) = progress.mode,
            !transfer.chunkOutstanding
        else { return }
        // Entries after a snapshot being sent are kept (see `compact(at:)`); should they be gone
        // anyway, the follower could not continue after it: start over.
        if transfer.pinned, log.metadata(at: transfer.lastIncludedIndex) == nil {
            transfer.pinned = false
            transfer.offset = 0
        }
        if !transfer.pinned, let current = log.metadata(at: log.applied) {
            transfer.lastIncludedIndex = current.lastIncludedIndex
            transfer.lastIncludedTerm = current.lastIncludedTerm
            transfer.pinned = true
        }
        guard let metadata = log.metadata(at: transfer.lastIncludedIndex) else { return }
        let chunk = InstallSnapshot(metadata: metadata, offset: transfer.offset, data: [], done: false, round: leader.round)
        send(peer, .installSnapshot(chunk))
        transfer.chunkOutstanding = true
        transfer.sentRound = leader.round
        progress.mode = .snapshot(transfer)
        leader.progress[peer] = progress
    }

    /// InstallSnapshot receiver (§7): accept chunks in order, hand each to the driver, and once
    /// the last one is in, replace the log and ask the driver to install the state.
    mutating func handleInstallSnapshot(_ message: Message, _ request: InstallSnapshot) {
        let metadata = request.metadata
        func reply(_ node: inout RaftNode, received: Int, installed: Bool, match: LogIndex) {
            node.send(message.from, .installSnapshotResponse(InstallSnapshotResponse(
                lastIncludedIndex: metadata.lastIncludedIndex, lastIncludedTerm: metadata.lastIncludedTerm,
                bytesReceived: received, installed: installed, matchIndex: match, round: request.round)))
        }
        // Already covered by what we know is committed: nothing to install.
        if metadata.lastIncludedIndex <= log.committed {
            incomingSnapshot = nil
            reply(&self, received: request.offset + request.data.count, installed: true, match: log.committed)
            return
        }
        // A snapshot completed since the last `Ready` is installed from that `Ready`'s chunks, the
        // last of which must be its own: a newer transfer's chunk after it would make the driver
        // start a new file before installing. Ask for the chunk again once the install is done.
        if snapshotToInstall != nil {
            reply(&self, received: 0, installed: false, match: .zero)
            return
        }
        if request.offset == 0, let incoming = incomingSnapshot, incoming.metadata == metadata, incoming.bytesReceived > 0 {
            // A late duplicate of the first chunk: keep what arrived since.
            reply(&self, received: incoming.bytesReceived, installed: false, match: .zero)
            return
        }
        if request.offset == 0 {
            incomingSnapshot = IncomingSnapshot(metadata: metadata, bytesReceived: 0)
        } else if incomingSnapshot?.metadata != metadata {
            incomingSnapshot = nil
        }
        guard var incoming = incomingSnapshot, incoming.bytesReceived == request.offset else {
            reply(&self, received: incomingSnapshot?.bytesReceived ?? 0, installed: false, match: .zero)
            return
        }
        acceptedSnapshotChunks.append(request)
        incoming.bytesReceived += request.data.count
        guard request.done else {
            incomingSnapshot = incoming
            reply(&self, received: incoming.bytesReceived, installed: false, match: .zero)
            return
        }
        incomingSnapshot = nil
        log.restore(metadata)
        snapshotToInstall = Snapshot(metadata: metadata, data: [])
        reply(&self, received: incoming.bytesReceived, installed: true, match: metadata.lastIncludedIndex)
    }

    /// The leader's side of an InstallSnapshot answer.
    mutating func handleSnapshotResponse(
        _ message: Message, _ response: InstallSnapshotResponse, _ leader: inout LeaderState
    ) {
        guard var progress = leader.progress[message.from] else { return }
        progress.recentlyActive = true
        progress.lastHeardTick = ticksElapsed
        progress.reportedUnreachable = false
        progress.ackedRound = max(progress.ackedRound, response.round)
        if response.installed {
            if response.matchIndex <= log.lastIndex { progress.finishSnapshot(matchIndex: response.matchIndex) }
            leader.progress[message.from] = progress
            maybeCommit(&leader)
            continueTransfer(&leader)
            replicate(to: message.from, &leader)
        } else if case .snapshot(var transfer) = progress.mode,
            transfer.lastIncludedIndex == response.lastIncludedIndex
        {
            transfer.offset = response.bytesReceived
            transfer.chunkOutstanding = false
            progress.mode = .snapshot(transfer)
            leader.progress[message.from] = progress
            sendSnapshotChunk(to: message.from, &leader)
        } else {
            leader.progress[message.from] = progress
        }
        confirmReads(&leader)
    }
}

/// A snapshot a follower is receiving: which one, and how many of its bytes arrived in order.
struct IncomingSnapshot: Hashable, Sendable {
    var metadata: SnapshotMetadata
    var bytesReceived: Int
}
