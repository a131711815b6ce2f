public import RaftCore

/// RaftCore's `LogStorage` in a SQLite database: the log entries, the hard state (term, vote,
/// commit index) and the latest snapshot with its metadata, in tables prefixed `raft_` so that
/// they can share a file with the state machine's tables.
///
/// Each `persist` is one transaction, with `synchronous=FULL` when the `Ready` must be durable
/// (the WAL is fsynced before `COMMIT` returns, and with it every earlier commit) and `NORMAL`
/// otherwise (which survives a process crash, not a power loss). Many entries go in one commit,
/// which is what makes the log fast: a commit of 256 entries costs about what a commit of one does.
///
/// The semantics are `MemoryLogStorage`'s exactly; both pass `LogStorageContractTests`. Any
/// failure is a `StorageError` naming the file — `.io` when the disk failed or is full, `.corrupt`
/// when the file is not a database or holds rows this code did not write (a gap in the log, an
/// undecodable payload) — and the node must stop.
///
/// Log indexes and terms are stored as the bit pattern of a signed 64-bit integer; values above
/// `Int64.max` would sort wrongly and are not supported.
public final class SQLiteLogStorage: LogStorage {
    /// How to open the storage.
    public struct Options: Sendable {
        /// Runs `PRAGMA quick_check` on open (reads the whole file: meant for small databases,
        /// tools and tests).
        public var verifyOnOpen: Bool = false
        /// How long to wait for another connection's write lock.
        public var busyTimeoutMilliseconds: Int32 = 5_000
        /// `PRAGMA wal_autocheckpoint` (see `SQLiteConnection.Options`); nil keeps SQLite's default.
        public var walAutocheckpointPages: Int32?

        /// The defaults: no check on open, 5 s busy timeout.
        public init() {}
    }

    /// The schema version this code writes and reads.
    public static let schemaVersion: Int64 = 1

    /// The database file.
    public var path: String { db.path }
    /// The connection, for tools and tests (e.g. `integrityCheck()`); do not write the `raft_`
    /// tables through it.
    public let db: SQLiteConnection

    /// Where the stored log begins and ends. Kept in memory and replaced only after a successful
    /// commit, so that the gap check needs no query.
    private(set) var bounds = Bounds(snapshotIndex: nil, lastIndex: .zero)
    /// The `PRAGMA synchronous` the connection has now, to set it only when it changes.
    private var synchronous: SQLiteConnection.SynchronousMode = .full
    /// True when a commit since the last fsync'd one ran with `synchronous=NORMAL`.
    private var hasUnsyncedCommits = false

    /// Opens (creating if needed) the log database at `path`; `:memory:` gives a private
    /// in-memory one. A file that is not a SQLite database, or one whose `raft_` tables were
    /// written by a newer schema, fails with `.corrupt`; a file that cannot be opened, with `.io`.
    public convenience init(path: String, options: Options = Options()) throws(StorageError) {
        var connectionOptions = SQLiteConnection.Options()
        connectionOptions.busyTimeoutMilliseconds = options.busyTimeoutMilliseconds
        connectionOptions.verifyOnOpen = options.verifyOnOpen
        connectionOptions.walAutocheckpointPages = options.walAutocheckpointPages
        let connection: SQLiteConnection
        do { connection = try SQLiteConnection(path: path, options: connectionOptions) } catch {
            throw error.storageError
        }
        try self.init(connection: connection)
    }

    /// Uses an open connection (which may also hold the state machine's tables), creating the
    /// `raft_` tables if they do not exist. The connection must be in WAL mode with no open
    /// transaction; this storage sets its `PRAGMA synchronous` before each write, which then also
    /// applies to anyone else's commits on the connection (a separate connection, or file, for the
    /// state machine avoids that).
    public init(connection: SQLiteConnection) throws(StorageError) {
        db = connection
        try sql { () throws(SQLiteError) in
            try db.setSynchronous(.full)
            try db.transaction { () throws(SQLiteError) in try createSchema() }
        }
        try checkSchemaVersion()
        try readIndexes()
    }

    private func createSchema() throws(SQLiteError) {
        // STRICT tables make SQLite itself refuse a value of the wrong type.
        try db.execute(
            """
            CREATE TABLE IF NOT EXISTS raft_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
            CREATE TABLE IF NOT EXISTS raft_entries(
                idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, payload BLOB NOT NULL) STRICT;
            CREATE TABLE IF NOT EXISTS raft_hard_state(
                id INTEGER PRIMARY KEY CHECK (id = 0), current_term INTEGER NOT NULL, voted_for INTEGER,
                commit_index INTEGER NOT NULL) STRICT;
            CREATE TABLE IF NOT EXISTS raft_snapshot(
                id INTEGER PRIMARY KEY CHECK (id = 0), last_index INTEGER NOT NULL, last_term INTEGER NOT NULL,
                membership BLOB NOT NULL, data BLOB NOT NULL) STRICT;
            INSERT OR IGNORE INTO raft_meta(key, value) VALUES ('schema_version', \(Self.schemaVersion));
            """)
    }

    private func checkSchemaVersion() throws(StorageError) {
        let stored = try sql { () throws(SQLiteError) in
            try db.scalarInt64("SELECT value FROM raft_meta WHERE key = 'schema_version'")
        }
        guard stored == Self.schemaVersion else {
            throw .corrupt(
                "\(path): the Raft log has schema version \(stored.map(String.init) ?? "none"), "
                    + "this kvd reads version \(Self.schemaVersion)")
        }
    }

    private func readIndexes() throws(StorageError) {
        let (snapshot, last) = try sql { () throws(SQLiteError) in
            (
                try db.scalarInt64("SELECT last_index FROM raft_snapshot WHERE id = 0"),
                try db.scalarInt64("SELECT max(idx) FROM raft_entries")
            )
        }
        let snapshotIndex = snapshot.map { LogIndex(UInt64(bitPattern: $0)) }
        // max() of an empty table is NULL, which reads as 0.
        let lastIndex = Swift.max(snapshotIndex ?? .zero, LogIndex(UInt64(bitPattern: last ?? 0)))
        bounds = Bounds(snapshotIndex: snapshotIndex, lastIndex: lastIndex)
    }

    /// The stored log's extent.
    struct Bounds {
        /// The last included index of the stored snapshot, if there is one.
        var snapshotIndex: LogIndex?
        /// The index of the last stored entry, or the snapshot's when there is no entry after it.
        var lastIndex: LogIndex
    }

    /// Runs SQLite calls, turning their failure into the `StorageError` it stands for.
    func sql<T>(_ body: () throws(SQLiteError) -> T) throws(StorageError) -> T {
        do { return try body() } catch { throw error.storageError }
    }
}

extension SQLiteLogStorage {
    /// Persists one `Ready` in one transaction: the snapshot (if any), then the entries (deleting
    /// the stored suffix from the first one's index), then the hard state. With `sync` the
    /// transaction commits with `synchronous=FULL` and is on disk when this returns; without, with
    /// `NORMAL`. An append that would leave a gap is refused with `.corrupt` and writes nothing.
    public func persist(
        hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool
    ) throws(StorageError) {
        if hardState == nil && entries.isEmpty && snapshot == nil {
            // Nothing new, but a sync must still make earlier unsynced commits durable, as
            // MemoryLogStorage's `persist(sync: true)` does.
            if sync && hasUnsyncedCommits { try syncEarlierCommits() }
            return
        }
        try setSynchronous(sync ? .full : .normal)
        do {
            bounds = try db.transaction(mapError: { $0.storageError }) { () throws(StorageError) in
                var next = bounds
                if let snapshot { next = try install(snapshot, next) }
                if !entries.isEmpty { next.lastIndex = try append(entries, next) }
                if let hardState { try sql { () throws(SQLiteError) in try store(hardState) } }
                return next
            }
        } catch {
            // A COMMIT whose fsync failed may still have landed; read the extent back rather than
            // guess. (The node stops on this error anyway; this keeps the storage honest if asked.)
            try? readIndexes()
            throw error
        }
        // A synced commit fsyncs the WAL, and with it every unsynced commit before it.
        hasUnsyncedCommits = !sync
    }

    /// Records a snapshot the application took and deletes the entries it covers, durably.
    public func compact(to snapshot: Snapshot) throws(StorageError) {
        try setSynchronous(.full)
        bounds = try db.transaction(mapError: { $0.storageError }) { () throws(StorageError) in
            try install(snapshot, bounds)
        }
        hasUnsyncedCommits = false
    }

    private func setSynchronous(_ mode: SQLiteConnection.SynchronousMode) throws(StorageError) {
        guard mode != synchronous else { return }
        try sql { () throws(SQLiteError) in try db.setSynchronous(mode) }
        synchronous = mode
    }

    /// Commits a no-change write with `synchronous=FULL`: the WAL fsync it causes covers every
    /// frame written before it.
    private func syncEarlierCommits() throws(StorageError) {
        try setSynchronous(.full)
        try sql { () throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) in
                try db.execute("UPDATE raft_meta SET value = value WHERE key = ?", .text("schema_version"))
            }
        }
        hasUnsyncedCommits = false
    }

    /// Writes `entries` at their indexes, replacing the stored entry with the first index and
    /// everything after it. Returns the new last index.
    private func append(_ entries: [Entry], _ bounds: Bounds) throws(StorageError) -> LogIndex {
        guard let first = entries.first, let last = entries.last else { return bounds.lastIndex }
        guard first.index > bounds.snapshotIndex ?? .zero, first.index <= bounds.lastIndex.next else {
            throw .corrupt("append at \(first.index) leaves a gap after \(bounds.lastIndex) (\(path))")
        }
        for (offset, entry) in entries.enumerated() where entry.index != first.index.advanced(by: Int64(offset)) {
            throw .corrupt("entries to append are not contiguous: \(entry.index) follows \(first.index) at offset \(offset) (\(path))")
        }
        try sql { () throws(SQLiteError) in
            if first.index <= bounds.lastIndex {
                try db.execute("DELETE FROM raft_entries WHERE idx >= ?", .integer(Self.int(first.index)))
            }
            let insert = try db.statement("INSERT INTO raft_entries(idx, term, kind, payload) VALUES (?, ?, ?, ?)")
            for entry in entries {
                let (kind, bytes) = RaftCodec.encode(entry.payload)
                try insert.run(
                    .integer(Self.int(entry.index)), .integer(Self.int(entry.term)), .integer(kind.rawValue),
                    .blob(bytes))
            }
        }
        return last.index
    }

    /// Stores `snapshot` unless a snapshot at or after its index is stored already. The entries
    /// after it are kept only if the log holds its last included entry with the same term (§7);
    /// otherwise the whole log is from another history and is discarded. Returns the new indexes.
    private func install(_ snapshot: Snapshot, _ bounds: Bounds) throws(StorageError) -> Bounds {
        let metadata = snapshot.metadata
        let index = metadata.lastIncludedIndex
        if let current = bounds.snapshotIndex, current >= index { return bounds }
        return try sql { () throws(SQLiteError) -> Bounds in
            let term = try db.scalarInt64("SELECT term FROM raft_entries WHERE idx = ?", .integer(Self.int(index)))
            var last = index
            if let term, term == Self.int(metadata.lastIncludedTerm) {
                try db.execute("DELETE FROM raft_entries WHERE idx <= ?", .integer(Self.int(index)))
                last = Swift.max(bounds.lastIndex, index)
            } else {
                try db.execute("DELETE FROM raft_entries")
            }
            try db.execute(
                "INSERT OR REPLACE INTO raft_snapshot(id, last_index, last_term, membership, data) VALUES (0, ?, ?, ?, ?)",
                .integer(Self.int(index)), .integer(Self.int(metadata.lastIncludedTerm)),
                .blob(RaftCodec.encode(metadata.membership)), .blob(snapshot.data))
            return Bounds(snapshotIndex: index, lastIndex: last)
        }
    }

    private func store(_ hardState: HardState) throws(SQLiteError) {
        try db.execute(
            "INSERT OR REPLACE INTO raft_hard_state(id, current_term, voted_for, commit_index) VALUES (0, ?, ?, ?)",
            .integer(Self.int(hardState.currentTerm)),
            hardState.votedFor.map { .integer(Int64(bitPattern: $0.rawValue)) } ?? .null,
            .integer(Self.int(hardState.commitIndex)))
    }

    static func int(_ index: LogIndex) -> Int64 { Int64(bitPattern: index.rawValue) }
    static func int(_ term: Term) -> Int64 { Int64(bitPattern: term.rawValue) }
}
