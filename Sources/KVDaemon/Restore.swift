#if canImport(Glibc)
import Glibc
#endif
public import KVStore
import RaftCore

/// `kvd --config NEW.conf --id ID --restore-from FILE [--data-dir DIR]`: builds node ID's data
/// directory of a new cluster from a backup (`kvctl snapshot save`), then exits; the node starts
/// normally afterwards. Every node of the new cluster is restored from the same file
/// (docs/CONFIGURATION.md, "Restoring from a backup").
///
/// The restored directory holds the backup's state and a log that starts with a snapshot at the
/// backup's applied index N and term T, and the new configuration's membership (§7: the snapshot
/// replaces the log up to N). The next entry any node of the new cluster appends is at N + 1 or
/// later, and a fencing token is the index of the entry that grants it, so every token issued
/// after the restore is greater than every token issued before the backup (all at most N). The
/// hard state starts at term T, so terms do not go back either.
public enum Restore {
    public struct Options: Sendable {
        public var configPath: String
        public var nodeID: UInt64
        public var backupPath: String
        public var dataDirectory: String?

        public init(configPath: String, nodeID: UInt64, backupPath: String, dataDirectory: String?) {
            self.configPath = configPath
            self.nodeID = nodeID
            self.backupPath = backupPath
            self.dataDirectory = dataDirectory
        }
    }

    /// What a restore did, for its one-line report.
    public struct Outcome: Sendable, CustomStringConvertible {
        public var dataDirectory: String
        public var metadata: BackupMetadata
        public var rows: UInt64
        public var leasesExpired: Int

        public var description: String {
            "restored \(dataDirectory) from cluster '\(metadata.clusterID)' at index \(metadata.appliedIndex) term \(metadata.term): "
                + "\(rows) rows, \(leasesExpired) leases expired"
        }
    }

    /// Builds the directory in `DIR.restoring`, then renames it to `DIR`; refuses an existing
    /// `DIR`, a backup of the same cluster id, and any damaged file (nothing is left under `DIR`).
    public static func run(_ options: Options) throws(DaemonError) -> Outcome {
        let config: ClusterConfig
        do { config = try ClusterConfig.load(path: options.configPath) } catch { throw .configuration("\(error)") }
        let id = NodeID(options.nodeID)
        do { _ = try config.requireNode(id) } catch { throw .configuration("\(error)") }
        let target = options.dataDirectory ?? DataDirectory.defaultPath(for: id)
        let building = target + ".restoring"
        for path in [target, building] where access(path, F_OK) == 0 {
            throw .startup("\(path) already exists; a restore never overwrites a data directory (remove it, or pick --data-dir)")
        }
        let reader: BackupFileReader
        do { reader = try BackupFileReader(path: options.backupPath) } catch { throw .startup("\(error)") }
        let backup = reader.metadata
        guard backup.clusterID != config.clusterID else {
            throw .configuration(
                "the backup is of cluster '\(backup.clusterID)', the cluster-id of \(options.configPath): a restored cluster needs a new "
                    + "cluster-id, so that no node of the old cluster can ever exchange messages with it")
        }
        guard backup.schemaVersion == BackupMetadata.currentSchemaVersion else {
            throw .startup("\(options.backupPath): state schema version \(backup.schemaVersion), this kvd restores \(BackupMetadata.currentSchemaVersion)")
        }
        do throws(DaemonError) {
            let outcome = try build(building, config: config, id: id, reader: reader)
            guard rename(building, target) == 0 else {
                throw DaemonError.startup("cannot rename \(building) to \(target): \(systemError())")
            }
            syncParent(of: target)
            return Outcome(dataDirectory: target, metadata: backup, rows: outcome.rows, leasesExpired: outcome.leases)
        } catch {
            removeTree(building)
            throw error
        }
    }

    private static func build(
        _ path: String, config: ClusterConfig, id: NodeID, reader: BackupFileReader
    ) throws(DaemonError) -> (rows: UInt64, leases: Int) {
        let backup = reader.metadata
        let directory: DataDirectory
        do { directory = try DataDirectory(path: path, clusterID: config.clusterID, nodeID: id) } catch {
            throw .startup("\(error)")
        }
        let snapshot = SnapshotMetadata(lastIncludedIndex: backup.appliedIndex, lastIncludedTerm: backup.term, membership: config.membership)
        let leases: Int
        do {
            let writer = try StateSnapshotWriter(path: directory.stateMachinePath, metadata: snapshot)
            do {
                while let chunk = try reader.nextChunk() { try writer.write(chunk) }
                leases = try writer.expireAllLeases()
                try writer.finish()
            } catch let error as StorageError {
                writer.discard()
                throw error
            }
            let storage = try SQLiteLogStorage(path: directory.raftLogPath)
            try storage.compact(to: Snapshot(metadata: snapshot, data: []))
            try storage.persist(
                hardState: HardState(currentTerm: backup.term, votedFor: nil, commitIndex: backup.appliedIndex), entries: [],
                snapshot: nil, sync: true)
        } catch let error as BackupFileError {
            throw .startup("\(error)")
        } catch let error as StorageError {
            throw .storage(error)
        } catch {
            throw .startup("\(error)")
        }
        withExtendedLifetime(directory) {}
        return (reader.rows, leases)
    }

    static func syncParent(of path: String) {
        let parent = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let descriptor = open(parent.isEmpty ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    /// Removes the files a failed restore left in `path` (only the names it writes), then `path`.
    static func removeTree(_ path: String) {
        for name in ["identity", "identity.tmp", "lock", "raft-log.sqlite", "state.sqlite", "state.sqlite.incoming"] {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink("\(path)/\(name)\(suffix)") }
        }
        rmdir(path)
    }
}
