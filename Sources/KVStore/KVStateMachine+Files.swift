#if canImport(Glibc)
import Glibc
#endif
public import RaftCore

/// The state database as the snapshot (after etcd's backend and rqlite): the applied index
/// commits with the data, so log compaction needs only to know the state is durable, and a
/// follower installs a snapshot by swapping in a whole new database file.
extension KVStateMachine {
    /// The path of the database file (`:memory:` for an in-memory one, which cannot be
    /// snapshotted to another node).
    public var databasePath: String { db.path }

    /// Makes every applied entry durable: fdatasync of the database and its WAL
    /// (`SQLiteConnection.syncToDisk`; the connection commits with `NORMAL`, which survives a
    /// process crash but not a power cut). Called before the log is compacted behind the applied
    /// index, since the state is then the only copy of those entries' effects. (A commit under
    /// `synchronous=FULL` that rewrites a row with the same bytes is not enough: SQLite skips the
    /// unchanged page, so nothing is written or synced.)
    public func makeDurable() throws(StorageError) {
        do {
            try db.syncToDisk()
        } catch {
            throw error.storageError
        }
    }

    /// See `SQLiteConnection.checkpointIfWALExceeds`.
    public func checkpointIfWALExceeds(_ frames: Int, progress: WALProgress, residualFrames: Int) throws(SQLiteError) -> Bool {
        try db.checkpointIfWALExceeds(frames, progress: progress, residualFrames: residualFrames)
    }

    /// The snapshot this database was installed from, if it was.
    public func installedSnapshot() throws(StorageError) -> SnapshotMetadata? {
        do {
            let statement = try db.statement("SELECT last_index, last_term, membership FROM kv_installed_snapshot WHERE id = 0")
            guard try statement.step() else { return nil }
            let index = LogIndex(UInt64(bitPattern: statement.int64(at: 0)))
            let term = Term(UInt64(bitPattern: statement.int64(at: 1)))
            let bytes = statement.blob(at: 2)
            statement.reset()
            let membership = try RaftCodec.decodeMembership(bytes, context: "installed snapshot in \(db.path)")
            return SnapshotMetadata(lastIncludedIndex: index, lastIncludedTerm: term, membership: membership)
        } catch {
            throw StorageError.from(error, path: db.path)
        }
    }

    /// Replaces the database by the complete file at `newFile` (from `StateSnapshotWriter`),
    /// atomically: the old database is checkpointed and closed, the new file renamed over it
    /// and the directory fsynced, then reopened. A crash leaves either the old database or the
    /// new one. Every other connection to the database (snapshot readers) must be closed first.
    public func replaceDatabase(with newFile: String) throws(StorageError) {
        try (fileGuard ?? DatabaseFileGuard()).withLock { () throws(StorageError) in try swapFiles(with: newFile) }
        try loadMeta()
    }

    private func swapFiles(with newFile: String) throws(StorageError) {
        let path = db.path
        var options = db.options
        options.create = true
        do {
            let busy = try db.scalarInt64("PRAGMA wal_checkpoint(TRUNCATE)") ?? 1
            guard busy == 0 else { throw StorageError.io("\(path): cannot checkpoint before installing a snapshot (busy)") }
            // Release the old connection (closing it deletes its WAL) before the rename.
            db = try SQLiteConnection.inMemory()
        } catch {
            throw StorageError.from(error, path: path)
        }
        for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
        guard Glibc.rename(newFile, path) == 0 else {
            throw .io("\(path): cannot rename the received snapshot into place: \(String(cString: strerror(errno)))")
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let descriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            let synced = fsync(descriptor) == 0
            close(descriptor)
            guard synced else { throw .io("\(directory): cannot fsync after installing a snapshot") }
        }
        do { db = try SQLiteConnection(path: path, options: options) } catch { throw error.storageError }
    }
}
