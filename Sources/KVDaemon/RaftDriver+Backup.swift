import KVStore
import RaftCore

/// Backups for clients (`SNAPSHOT BEGIN|CHUNK|END`, docs/PROTOCOL.md "Backups"): the same
/// consistent read as a follower's snapshot transfer (`StateSnapshotReader`: its own connection
/// and read transaction, opened in the loop, so it sees exactly the applied index), pulled by the
/// client one chunk per request.
///
/// Bounds: a slow client costs the loop nothing between its requests, and each request reads
/// one chunk (`snapshot-chunk-bytes`, more only for one larger row); a node keeps, per backup,
/// only the last chunk (to answer a repeated request) and serves at most `backupsMax` at once;
/// a backup not asked for its next chunk within `backupIdleMillis` is dropped, so that its read
/// transaction does not pin the WAL.
extension RaftDriver {
    /// Most backups a node streams at once.
    static let backupsMax = 2
    /// A backup idle this long is dropped (its client must start over).
    static let backupIdleMillis: UInt64 = 60_000

    /// One client's backup.
    struct BackupTransfer {
        var reader: StateSnapshotReader
        var metadata: BackupMetadata
        /// The last chunk sent, by sequence number, to answer a repeated request.
        var lastChunk: (sequence: UInt64, bytes: [UInt8], done: Bool)?
        var lastRequestMillis: UInt64
    }

    /// Parsed `SNAPSHOT` subcommands.
    func serveBackup(_ step: BackupStep) -> Reply {
        switch step {
        case .begin: return beginBackup()
        case .chunk(let id, let sequence): return backupChunk(id: id, sequence: sequence)
        case .end(let id):
            backups[id] = nil
            return .ok
        }
    }

    private func beginBackup() -> Reply {
        guard node.isLeader else {
            let leader = node.status.leaderID
            return .notLeader(leader, address: leader.flatMap { settings.clientAddresses[$0] })
        }
        guard backups.count < Self.backupsMax else {
            return .unavailable("\(backups.count) backups are under way (at most \(Self.backupsMax)); retry later")
        }
        let reader: StateSnapshotReader
        do { reader = try StateSnapshotReader(path: machine.databasePath) } catch {
            return .unavailable("cannot read the state for a backup: \(error)")
        }
        guard reader.appliedIndex == machine.appliedIndex, let raft = node.snapshotMetadata(at: reader.appliedIndex) else {
            return .unavailable("the state is at \(reader.appliedIndex), the log cannot describe it; retry")
        }
        let metadata = BackupMetadata(
            clusterID: settings.clusterID, sourceNode: node.id, appliedIndex: raft.lastIncludedIndex,
            term: raft.lastIncludedTerm, membership: raft.membership, createdMillis: wallMillis(),
            schemaVersion: BackupMetadata.currentSchemaVersion)
        let id = nextBackupID
        nextBackupID += 1
        backups[id] = BackupTransfer(reader: reader, metadata: metadata, lastChunk: nil, lastRequestMillis: monotonicMillis())
        logger.info("backup started", metadata: ["backup": "\(id)", "index": "\(metadata.appliedIndex)"])
        return .array([.integer(Int64(clamping: id)), .bulk(Array(metadata.text.utf8))])
    }

    private func backupChunk(id: UInt64, sequence: UInt64) -> Reply {
        guard var transfer = backups[id] else { return .err("no backup \(id) on this node (it ended or was idle too long)") }
        let expected = transfer.lastChunk.map { $0.sequence + 1 } ?? 0
        if let last = transfer.lastChunk, last.sequence == sequence {
            return Self.chunkReply(last.sequence, last.bytes, last.done)
        }
        guard sequence == expected, !(transfer.lastChunk?.done ?? false) else {
            return .err("backup \(id) expects chunk \(expected), not \(sequence)")
        }
        do {
            let (bytes, done) = try transfer.reader.nextChunk(maxBytes: node.configuration.snapshotChunkBytes)
            transfer.lastChunk = (sequence, bytes, done)
            transfer.lastRequestMillis = monotonicMillis()
            backups[id] = transfer
            if done {
                logger.info(
                    "backup read",
                    metadata: [
                        "backup": "\(id)", "index": "\(transfer.metadata.appliedIndex)",
                        "bytes": "\(transfer.reader.bytesProduced)", "rows": "\(transfer.reader.rowsProduced)",
                    ])
            }
            return Self.chunkReply(sequence, bytes, done)
        } catch {
            backups[id] = nil
            logger.error("backup \(id) read failed: \(error)")
            return .unavailable("backup read failed: \(error)")
        }
    }

    private static func chunkReply(_ sequence: UInt64, _ bytes: [UInt8], _ done: Bool) -> Reply {
        .array([.integer(Int64(clamping: sequence)), .bulk(bytes), .integer(done ? 1 : 0)])
    }

    /// Drops backups whose client stopped asking.
    func dropIdleBackups(now: UInt64) {
        guard !backups.isEmpty else { return }
        for (id, transfer) in backups where now - transfer.lastRequestMillis > Self.backupIdleMillis {
            backups[id] = nil
            logger.info("backup \(id) abandoned: no request for \(Self.backupIdleMillis) ms")
        }
    }
}

/// A `SNAPSHOT` subcommand.
public enum BackupStep: Hashable, Sendable {
    /// `SNAPSHOT BEGIN`: `[id, header text]`.
    case begin
    /// `SNAPSHOT CHUNK id seq`: `[seq, chunk, done]`; asking `seq` again repeats it.
    case chunk(id: UInt64, sequence: UInt64)
    /// `SNAPSHOT END id`: `+OK`, the node forgets the backup.
    case end(id: UInt64)

    static func parse(_ args: [[UInt8]]) throws(CommandError) -> BackupStep {
        guard let first = args.first else { throw CommandError("wrong number of arguments for 'SNAPSHOT'") }
        let rest = Array(args.dropFirst())
        switch CommandParser.upper(first) {
        case "BEGIN":
            _ = try CommandParser.exactly(0, rest, "SNAPSHOT BEGIN")
            return .begin
        case "CHUNK":
            let values = try CommandParser.exactly(2, rest, "SNAPSHOT CHUNK")
            return .chunk(id: try CommandParser.unsigned(values[0], "backup id"), sequence: try CommandParser.unsigned(values[1], "chunk number"))
        case "END":
            return .end(id: try CommandParser.unsigned(try CommandParser.exactly(1, rest, "SNAPSHOT END")[0], "backup id"))
        default: throw CommandError("unknown subcommand for 'SNAPSHOT' (BEGIN, CHUNK or END)")
        }
    }
}
