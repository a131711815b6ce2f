#if canImport(Glibc)
import Glibc
#endif
public import RaftCore

/// Builds a new state database from a leader's snapshot chunks (the follower's side of
/// InstallSnapshot), in a file beside the live one, one transaction per chunk. When the last
/// chunk is in, `finish` checks that the state is the one the metadata names, records that
/// metadata in the file (so that a restart after the swap can complete the install in the log
/// storage), checkpoints it and closes it, ready to be renamed over the live database.
public final class StateSnapshotWriter {
    /// The file being written.
    public let path: String
    /// The snapshot being received.
    public let metadata: SnapshotMetadata
    /// Bytes of chunks written so far.
    public private(set) var bytesWritten = 0
    /// Rows written so far.
    public private(set) var rowsWritten = 0

    var db: SQLiteConnection?
    private var inserts: [SQLiteStatement] = []

    /// Creates `path` afresh (removing any earlier file there and its WAL) with the state schema.
    public init(path: String, metadata: SnapshotMetadata) throws(StorageError) {
        self.path = path
        self.metadata = metadata
        Self.remove(path)
        do {
            let connection = try SQLiteConnection(path: path)
            for statement in KVSchema.statements { try connection.execute(statement) }
            inserts = try KVSchema.snapshotTables.map { table throws(SQLiteError) in
                let placeholders = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
                return try connection.prepare(
                    "INSERT INTO \(table.name)(\(table.columns.joined(separator: ", "))) VALUES(\(placeholders))",
                    persistent: true)
            }
            db = connection
        } catch {
            throw error.storageError
        }
    }

    /// Writes one chunk. A chunk that does not decode (damaged, or of another format) is
    /// `.corrupt` and writes nothing; the transfer must start over.
    public func write(_ chunk: [UInt8]) throws(StorageError) {
        guard let db else { throw .io("\(path): snapshot file already closed") }
        let rows: [(table: Int, row: [SQLiteValue])]
        do { rows = try StateSnapshotFormat.decode(chunk) } catch {
            throw .corrupt("snapshot chunk at byte \(bytesWritten) for index \(metadata.lastIncludedIndex): \(error)")
        }
        do {
            try db.transaction { () throws(SQLiteError) in
                for (table, row) in rows {
                    let insert = inserts[table]
                    insert.reset()
                    try insert.run(row)
                }
            }
        } catch {
            throw error.storageError
        }
        bytesWritten += chunk.count
        rowsWritten += rows.count
    }

    /// Completes the file: its applied index must be the snapshot's; records the metadata, writes
    /// everything into the main file and closes it. The caller then renames it into place.
    public func finish() throws(StorageError) {
        guard let db else { throw .io("\(path): snapshot file already closed") }
        do {
            let applied = try db.scalarInt64("SELECT value FROM kv_meta WHERE name = 'applied_index'") ?? 0
            guard UInt64(bitPattern: applied) == metadata.lastIncludedIndex.rawValue else {
                throw StorageError.corrupt(
                    "\(path): received state is at index \(applied), the snapshot says \(metadata.lastIncludedIndex)")
            }
            guard try db.scalarInt64("SELECT value FROM kv_meta WHERE name = 'schema_version'") == KVSchema.version else {
                throw StorageError.corrupt("\(path): received state has another schema version")
            }
            try db.execute(
                "INSERT OR REPLACE INTO kv_installed_snapshot(id, last_index, last_term, membership) VALUES(0, ?, ?, ?)",
                .integer(Int64(bitPattern: metadata.lastIncludedIndex.rawValue)),
                .integer(Int64(bitPattern: metadata.lastIncludedTerm.rawValue)), .blob(RaftCodec.encode(metadata.membership)))
            try db.checkpoint()
        } catch {
            throw StorageError.from(error, path: path)
        }
        inserts = []
        self.db = nil
    }

    /// Abandons the file.
    public func discard() {
        inserts = []
        db = nil
        Self.remove(path)
    }

    /// Removes a database file and its WAL and shared-memory files.
    public static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    }
}
