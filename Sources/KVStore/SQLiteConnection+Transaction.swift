#if canImport(Glibc)
import Glibc
#endif
internal import CSQLite

extension SQLiteConnection {
    /// Runs `body` inside `BEGIN IMMEDIATE` ... `COMMIT` and returns its result. If `body` throws
    /// or `COMMIT` fails, the transaction is rolled back and the error rethrown, so either all of
    /// `body`'s writes land or none do. With `synchronous=FULL` (in WAL mode) the writes are on
    /// disk when this returns.
    ///
    /// `IMMEDIATE` takes the write lock at the start, so a busy database fails here (after the
    /// busy timeout) rather than half-way through `body`. Transactions do not nest: calling this
    /// inside `body` is a programmer error.
    public func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try transaction(mapError: { $0 }, body)
    }

    /// Runs `body` in one transaction like `transaction(_:)`, for a body that throws its own error
    /// type `E` (for example `StorageError`); `mapError` turns a failure of BEGIN or COMMIT into
    /// an `E`.
    public func transaction<T, E: Error>(
        mapError: (SQLiteError) -> E, _ body: () throws(E) -> T
    ) throws(E) -> T {
        precondition(isAutocommit, "SQLite transactions do not nest (\(path))")
        do { try statement("BEGIN IMMEDIATE").run() } catch { throw mapError(error) }
        let result: T
        do {
            result = try body()
        } catch {
            rollback()
            throw error
        }
        do {
            try statement("COMMIT").run()
        } catch {
            // A failed COMMIT (a full disk, a failed fsync) may leave the transaction open;
            // rolling back returns the connection to a known state.
            rollback()
            throw mapError(error)
        }
        return result
    }

    /// Rolls back the open transaction, if any. A failed rollback is not reported: the caller is
    /// already handling the error that made it roll back, and SQLite rolls back on its own when
    /// the connection closes or the next transaction starts after a hot journal.
    private func rollback() {
        guard !isAutocommit else { return }
        sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
    }

    /// Sets `PRAGMA synchronous`. It cannot change inside a transaction, so set it before `BEGIN`.
    public func setSynchronous(_ mode: SynchronousMode) throws(SQLiteError) {
        try execute("PRAGMA synchronous=\(mode.rawValue)")
    }

    /// Runs `PRAGMA integrity_check` (or the faster `quick_check`, which skips index contents) and
    /// returns the problems it reports; an empty array means the database is sound. It reads the
    /// whole file, so use it on open only for small databases or in tests and tools.
    public func integrityCheck(quick: Bool = false) throws(SQLiteError) -> [String] {
        let statement = try prepare(quick ? "PRAGMA quick_check" : "PRAGMA integrity_check")
        var lines: [String] = []
        while try statement.step() { lines.append(statement.text(at: 0)) }
        return lines == ["ok"] ? [] : lines
    }

    /// Checkpoints (PASSIVE) when, by the last background checkpoint's account (`progress`), the
    /// WAL holds more than `frames` frames of which at most `residualFrames` were left to copy;
    /// returns whether it completed, so that the next write transaction starts the WAL over.
    /// Meant to run on the writing connection: under continuous writes only a checkpoint between
    /// two of the writer's own transactions can complete, and the WAL otherwise never restarts
    /// (SQLite reuses a WAL file from its beginning only after a complete checkpoint).
    public func checkpointIfWALExceeds(_ frames: Int, progress: WALProgress, residualFrames: Int) throws(SQLiteError) -> Bool {
        let (inWAL, copied) = progress.frames
        guard inWAL > frames, inWAL - copied <= residualFrames else { return false }
        let (busy, now, done) = try checkpointPassive()
        let completed = busy == 0 && now == done
        if completed { progress.reset() }
        return completed
    }

    /// Runs `wal_checkpoint(PASSIVE)`: (busy, frames in the WAL, frames copied).
    public func checkpointPassive() throws(SQLiteError) -> (busy: Int, frames: Int, copied: Int) {
        let statement = try prepare("PRAGMA wal_checkpoint(PASSIVE)")
        guard try statement.step() else { return (1, 0, 0) }
        return (Int(statement.int64(at: 0)), Int(statement.int64(at: 1)), Int(statement.int64(at: 2)))
    }


    /// Writes the WAL back into the database file and truncates the WAL (`wal_checkpoint(TRUNCATE)`).
    public func checkpoint() throws(SQLiteError) {
        try execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}
