/// Log compaction and InstallSnapshot in chunks (§7).
extension RaftNode {
    /// Records that the application snapshotted its state at `index` (at most the applied index)
    /// and discards the log up to it. Returns the snapshot, which the driver must hand to
    /// `LogStorage.compact(to:)`.
    public mutating func compact(at index: LogIndex, data: [UInt8]) -> Snapshot? {
        precondition(!readyOutstanding, "compact called between takeReady and advance")
        precondition(index <= log.applied, "cannot snapshot beyond the applied index \(log.applied)")
        guard index > log.snapshotIndex, let term = log.term(at: index) else { return nil }
        let metadata = SnapshotMetadata(
            lastIncludedIndex: index, lastIncludedTerm: term, membership: log.membership(atOrBefore: index))
        let snapshot = Snapshot(metadata: metadata, data: data)
        log.compact(to: index, term: term)
        self.snapshot = snapshot
        return snapshot
    }

    /// Sends the next chunk of the latest snapshot to `peer` unless one is already out.
    mutating func sendSnapshotChunk(to peer: NodeID, _ leader: inout LeaderState) {
        guard var progress = leader.progress[peer], case .snapshot(var transfer) = progress.mode,
            !transfer.chunkOutstanding, let snapshot
        else { return }
        let metadata = snapshot.metadata
        if transfer.lastIncludedIndex != metadata.lastIncludedIndex || transfer.offset > snapshot.data.count {
            // A newer snapshot replaced the one being sent: start over with it.
            transfer = Progress.SnapshotTransfer(
                lastIncludedIndex: metadata.lastIncludedIndex, lastIncludedTerm: metadata.lastIncludedTerm,
                offset: 0, chunkOutstanding: false)
        }
        let end = min(transfer.offset + configuration.snapshotChunkBytes, snapshot.data.count)
        let chunk = InstallSnapshot(
            metadata: metadata, offset: transfer.offset, data: Array(snapshot.data[transfer.offset..<end]),
            done: end == snapshot.data.count, round: leader.round)
        send(peer, .installSnapshot(chunk))
        transfer.chunkOutstanding = true
        progress.mode = .snapshot(transfer)
        leader.progress[peer] = progress
    }

    /// InstallSnapshot receiver (§7): gather chunks in order, then replace the log and state.
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
        if request.offset == 0 || incomingSnapshot?.metadata != metadata {
            incomingSnapshot = request.offset == 0 ? Snapshot(metadata: metadata, data: []) : nil
        }
        guard var incoming = incomingSnapshot, incoming.data.count == request.offset else {
            reply(&self, received: incomingSnapshot?.data.count ?? 0, installed: false, match: .zero)
            return
        }
        incoming.data.append(contentsOf: request.data)
        guard request.done else {
            incomingSnapshot = incoming
            reply(&self, received: incoming.data.count, installed: false, match: .zero)
            return
        }
        incomingSnapshot = nil
        log.restore(metadata)
        snapshot = incoming
        snapshotToInstall = incoming
        reply(&self, received: incoming.data.count, installed: true, match: metadata.lastIncludedIndex)
    }

    /// The leader's side of an InstallSnapshot answer.
    mutating func handleSnapshotResponse(
        _ message: Message, _ response: InstallSnapshotResponse, _ leader: inout LeaderState
    ) {
        guard var progress = leader.progress[message.from] else { return }
        progress.recentlyActive = true
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
