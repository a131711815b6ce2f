import KVStore
import Logging
import RaftCore

/// Snapshots without copying the state inside the loop (after etcd's backend and rqlite): the
/// state database records its applied index with the data, so it *is* the snapshot.
///
/// - Compaction makes the state durable (one fsync) and cuts the log; nothing is serialised.
/// - A leader serves a follower's transfer from a `StateSnapshotReader`: its own connection with
///   a read transaction that sees the state as of the index RaftCore named, read one chunk per
///   request, so each loop iteration does a chunk's worth of work however large the state.
/// - A follower writes each accepted chunk into a new database file (`StateSnapshotWriter`) and,
///   when the last one is in, swaps that file in before the log storage records the snapshot.
///   A crash before the swap leaves the old state (the partial file is deleted at start); after
///   it, the new state carries the snapshot's metadata and the start completes the install in
///   the log storage (`completeInterruptedInstall`).
extension RaftDriver {
    /// One follower's transfer on the leader.
    struct OutgoingTransfer {
        var metadata: SnapshotMetadata
        var reader: StateSnapshotReader
        /// The last chunk produced and where it starts, to resend it if it was lost.
        var lastChunk: (offset: Int, bytes: [UInt8], done: Bool)?
        var startedAtMillis: UInt64
        /// When the follower last asked for a new chunk (resends do not count).
        var lastProgressMillis: UInt64
    }

    /// The snapshot this follower is receiving.
    struct IncomingTransfer {
        var writer: StateSnapshotWriter
        var startedAtMillis: UInt64
    }

    /// The file a follower writes a received snapshot into, beside the state database.
    var incomingSnapshotPath: String { Self.incomingSnapshotPath(beside: machine.databasePath) }

    static func incomingSnapshotPath(beside statePath: String) -> String { statePath + ".incoming" }

    // MARK: Leader

    /// Gives each chunk request RaftCore addressed to a follower its bytes. A request that cannot
    /// be served is dropped and the transfer restarted after `advance`.
    func fillSnapshotChunks(_ messages: [Message]) -> [Message] {
        messages.compactMap { message in
            guard case .installSnapshot(var request) = message.body else { return message }
            guard let (bytes, done) = chunk(for: request, to: message.to) else {
                transfersToRestart.append(message.to)
                return nil
            }
            request.data = bytes
            request.done = done
            var filled = message
            filled.body = .installSnapshot(request)
            return filled
        }
    }

    private func chunk(for request: InstallSnapshot, to peer: NodeID) -> (bytes: [UInt8], done: Bool)? {
        let now = monotonicMillis()
        if request.offset == 0, outgoing[peer]?.metadata != request.metadata || outgoing[peer]?.lastChunk?.offset != 0 {
            outgoing[peer] = nil
            guard outgoing.count < settings.snapshotTransfersMax else {
                logger.debug("snapshot for node \(peer) waits: \(outgoing.count) transfers under way")
                return nil
            }
            do {
                let reader = try StateSnapshotReader(path: machine.databasePath)
                guard reader.appliedIndex == request.metadata.lastIncludedIndex else {
                    logger.warning(
                        "snapshot for node \(peer): the state is at \(reader.appliedIndex), RaftCore asked for \(request.metadata.lastIncludedIndex)")
                    return nil
                }
                outgoing[peer] = OutgoingTransfer(
                    metadata: request.metadata, reader: reader, lastChunk: nil, startedAtMillis: now, lastProgressMillis: now)
                logger.info(
                    "snapshot transfer started", metadata: ["peer": "\(peer)", "index": "\(request.metadata.lastIncludedIndex)"])
            } catch {
                logger.error("cannot read the state for a snapshot to node \(peer): \(error)")
                return nil
            }
        }
        guard var transfer = outgoing[peer], transfer.metadata == request.metadata else { return nil }
        defer { outgoing[peer] = transfer }
        if let last = transfer.lastChunk, last.offset == request.offset { return (last.bytes, last.done) }
        let nextOffset = transfer.lastChunk.map { $0.offset + $0.bytes.count } ?? 0
        guard nextOffset == request.offset, !(transfer.lastChunk?.done ?? false) else { return nil }
        do {
            let (bytes, done) = try transfer.reader.nextChunk(maxBytes: node.configuration.snapshotChunkBytes)
            transfer.lastChunk = (request.offset, bytes, done)
            transfer.lastProgressMillis = now
            if done {
                let elapsed = now - transfer.startedAtMillis
                metrics.snapshotsSent.increment()
                logger.info(
                    "snapshot sent",
                    metadata: [
                        "peer": "\(peer)", "index": "\(transfer.metadata.lastIncludedIndex)",
                        "bytes": "\(transfer.reader.bytesProduced)", "rows": "\(transfer.reader.rowsProduced)",
                        "ms": "\(elapsed)",
                    ])
            }
            return (bytes, done)
        } catch {
            logger.error("snapshot read for node \(peer) failed: \(error)")
            return nil
        }
    }

    /// Ends transfers that made no progress for a while (the follower died or caught up
    /// otherwise), so that their read transactions do not pin the WAL; and every transfer once
    /// this node no longer leads.
    func dropIdleTransfers(now: UInt64) {
        guard !outgoing.isEmpty else { return }
        let idleMillis = 20 * settings.electionTimeoutMillis
        for peer in outgoing.keys.sorted() {
            guard let transfer = outgoing[peer] else { continue }
            if !node.isLeader || now - transfer.lastProgressMillis > idleMillis {
                outgoing[peer] = nil
                if !transfer.reader.isFinished { logger.info("snapshot transfer to node \(peer) abandoned") }
            }
        }
    }

    // MARK: Follower

    /// Writes the chunks RaftCore accepted and, if the last one is in, installs the state. Returns
    /// false if a chunk could not be written: its acknowledgement must not be sent, and the
    /// transfer starts over. A failure to install a complete snapshot is fatal (RaftCore has
    /// already replaced its log).
    func receiveSnapshot(_ ready: Ready) throws(DaemonError) -> Bool {
        // A chunk at offset zero starts a snapshot over: chunks before the last such one (stale
        // transfers delivered together after a reconnection) need no writing.
        let live = ready.snapshotChunks.lastIndex { $0.offset == 0 } ?? ready.snapshotChunks.startIndex
        for chunk in ready.snapshotChunks[live...] {
            do {
                if chunk.offset == 0 || incoming?.writer.metadata != chunk.metadata {
                    incoming?.writer.discard()
                    incoming = IncomingTransfer(
                        writer: try StateSnapshotWriter(path: incomingSnapshotPath, metadata: chunk.metadata),
                        startedAtMillis: monotonicMillis())
                    logger.info("receiving snapshot", metadata: ["index": "\(chunk.metadata.lastIncludedIndex)"])
                }
                try incoming?.writer.write(chunk.data)
            } catch {
                logger.error("cannot write a received snapshot chunk; the transfer starts over: \(error)")
                incoming?.writer.discard()
                incoming = nil
                guard ready.snapshot == nil else { throw .storage(error) }
                return false
            }
        }
        guard let snapshot = ready.snapshot else { return true }
        guard let transfer = incoming, transfer.writer.metadata == snapshot.metadata else {
            throw .storage(.corrupt("RaftCore installs the snapshot at \(snapshot.metadata.lastIncludedIndex) but no file holds it"))
        }
        do {
            try transfer.writer.finish()
            outgoing = [:]
            try machine.replaceDatabase(with: transfer.writer.path)
        } catch {
            throw .storage(error)
        }
        incoming = nil
        metrics.snapshotsInstalled.increment()
        logger.info(
            "snapshot installed",
            metadata: [
                "index": "\(snapshot.metadata.lastIncludedIndex)", "term": "\(snapshot.metadata.lastIncludedTerm)",
                "bytes": "\(transfer.writer.bytesWritten)", "rows": "\(transfer.writer.rowsWritten)",
                "ms": "\(monotonicMillis() - transfer.startedAtMillis)",
            ])
        return true
    }

    /// Start-up: a state database installed from a snapshot whose metadata the log storage does
    /// not have (a crash between the swap and the log write) completes the install there first.
    static func completeInterruptedInstall(
        _ state: inout PersistentState, storage: inout any LogStorage, machine: KVStateMachine
    ) throws(StorageError) {
        guard let installed = try machine.installedSnapshot(),
            installed.lastIncludedIndex > (state.snapshot?.metadata.lastIncludedIndex ?? .zero),
            installed.lastIncludedIndex == machine.appliedIndex
        else { return }
        try storage.compact(to: Snapshot(metadata: installed, data: []))
        state = try storage.load()
    }

    // MARK: WAL length

    /// Lets each database's WAL start over once it passed `walResetFrames`: a PASSIVE checkpoint on
    /// the loop's own connection, between two of its transactions, copies what the background
    /// checkpointer has not (little, as it runs every 100 ms) and so completes, and the next commit
    /// starts the WAL from its beginning. Not while a snapshot transfer's read transaction pins
    /// old frames of the state database (it could not complete). A long WAL slows every read and
    /// a restart (which scans it).
    func resetLongWALs() throws(DaemonError) {
        let limit = settings.walResetFrames, residual = settings.walResidualFramesMax
        do {
            if outgoing.isEmpty, backups.isEmpty, let progress = settings.stateWALProgress,
                try machine.checkpointIfWALExceeds(limit, progress: progress, residualFrames: residual)
            {
                metrics.walResets.increment()
            }
            if let progress = settings.logWALProgress, let log = storage as? SQLiteLogStorage,
                try log.db.checkpointIfWALExceeds(limit, progress: progress, residualFrames: residual)
            {
                metrics.walResets.increment()
            }
        } catch {
            throw .storage(error.storageError)
        }
    }

    // MARK: Compaction

    /// Every `snapshotEntries` applied entries: make the state durable, then cut the log there.
    /// RaftCore may cut short of it while a transfer needs the entries after its snapshot.
    func compactIfDue() throws(DaemonError) {
        let applied = machine.appliedIndex
        let snapshotIndex = node.status.snapshotIndex
        guard applied.rawValue - snapshotIndex.rawValue >= settings.snapshotEntries, applied >= nextCompactionAt else { return }
        let started = monotonicMillis()
        do {
            try machine.makeDurable()
            if let snapshot = node.compact(at: applied) {
                try storage.compact(to: snapshot)
                metrics.logCompactions.increment()
                logger.info(
                    "log compacted",
                    metadata: [
                        "index": "\(snapshot.metadata.lastIncludedIndex)", "applied": "\(applied)",
                        "ms": "\(monotonicMillis() - started)",
                    ])
            }
        } catch {
            throw .storage(error)
        }
        // Cut short (a transfer holds the log): try again after a quarter of the interval.
        let cut = node.status.snapshotIndex
        nextCompactionAt = cut < applied ? applied.advanced(by: Int64(max(1, settings.snapshotEntries / 4))) : .zero
    }
}
