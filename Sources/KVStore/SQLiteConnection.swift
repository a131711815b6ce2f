internal import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// One connection to a SQLite database (the system `libsqlite3`), closed when the object goes
/// away. Opened in WAL mode with `synchronous=FULL`, a busy timeout and foreign keys off, so that
/// every committed transaction is durable when `COMMIT` returns.
///
/// Not thread-safe (opened with `SQLITE_OPEN_NOMUTEX`): one owner — an actor or a single loop —
/// uses a connection and its statements.
///
///     let db = try SQLiteConnection(path: "data/1/kv.sqlite")
///     try db.execute("CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL)")
///     try db.transaction {
///         try db.statement("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)").run(.text("k"), .blob([1]))
///     }
public final class SQLiteConnection {
    /// How SQLite syncs a transaction to disk (`PRAGMA synchronous`).
    public enum SynchronousMode: String, Sendable {
        /// In WAL mode: fsync the WAL at every commit; a committed transaction survives power loss.
        case full = "FULL"
        /// In WAL mode: fsync only at checkpoints; the database stays consistent after a crash but
        /// the latest commits may be lost.
        case normal = "NORMAL"
        /// No fsync at all (tests and benchmarks of CPU cost only).
        case off = "OFF"
    }

    /// How to open a connection.
    public struct Options: Sendable {
        /// How long a write waits for another connection's lock before failing with SQLITE_BUSY.
        public var busyTimeoutMilliseconds: Int32 = 5_000
        /// The initial `PRAGMA synchronous`.
        public var synchronous: SynchronousMode = .full
        /// Whether to create the file if it does not exist.
        public var create: Bool = true
        /// Whether to run `PRAGMA quick_check` after opening and fail with a corruption error if
        /// it finds a problem. It reads the whole file: cheap for small databases only.
        public var verifyOnOpen: Bool = false
        /// `PRAGMA wal_autocheckpoint`: WAL pages after which a commit on this connection also
        /// checkpoints; nil keeps SQLite's default (1000). A daemon that checkpoints from another
        /// thread (`WALCheckpointer`) sets it high, as a backstop only.
        public var walAutocheckpointPages: Int32?
        /// `PRAGMA cache_size` in KiB of page cache for this connection; nil keeps SQLite's
        /// default (2 MiB).
        public var cacheKibibytes: Int32?

        /// How `syncToDisk` flushes one open file to the disk: 0, or the errno of the failure.
        /// Tests replace it to see what a failing disk does.
        public var syncFile: @Sendable (Int32) -> Int32 = { fd in fdatasync(fd) == 0 ? 0 : errno }

        /// The defaults: 5 s busy timeout, `synchronous=FULL`, create if missing, no check.
        public init() {}
    }

    /// The file path given at open (`:memory:` for an in-memory database).
    public let path: String
    /// The options it was opened with.
    public let options: Options
    /// The `sqlite3` connection, owned by this object.
    let handle: OpaquePointer
    private var cache: [String: SQLiteStatement] = [:]

    /// Opens (and by default creates) the database at `path` in WAL mode. The special path
    /// `:memory:` opens a private in-memory database (its journal stays in memory: no WAL).
    public init(path: String, options: Options = Options()) throws(SQLiteError) {
        self.path = path
        self.options = options
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        if options.create { flags |= SQLITE_OPEN_CREATE }
        let code = sqlite3_open_v2(path, &db, flags, nil)
        guard code == SQLITE_OK, let db else {
            let error = lastError(db, code: code, path: path, operation: "open")
            sqlite3_close_v2(db)
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, options.busyTimeoutMilliseconds)
        try configure(options)
    }

    /// Opens a private in-memory database, for simulation and unit tests.
    public static func inMemory(options: Options = Options()) throws(SQLiteError) -> SQLiteConnection {
        try SQLiteConnection(path: ":memory:", options: options)
    }

    deinit {
        cache.removeAll()
        // close_v2 defers the close until every statement still alive has been finalised.
        sqlite3_close_v2(handle)
    }

    private func configure(_ options: Options) throws(SQLiteError) {
        // The first statement reads the header: a file that is not a database fails here with
        // SQLITE_NOTADB, which `SQLiteError.storageError` reports as corruption.
        let mode = try scalarText("PRAGMA journal_mode=WAL")
        if path != ":memory:" && !path.isEmpty && mode.lowercased() != "wal" {
            throw SQLiteError(
                path: path, operation: "PRAGMA journal_mode=WAL", extendedCode: SQLITE_ERROR,
                message: "the database stayed in journal mode \(mode)")
        }
        try execute("PRAGMA foreign_keys=OFF")
        if let pages = options.walAutocheckpointPages { try execute("PRAGMA wal_autocheckpoint=\(pages)") }
        if let kibibytes = options.cacheKibibytes { try execute("PRAGMA cache_size=-\(kibibytes)") }
        try setSynchronous(options.synchronous)
        if options.verifyOnOpen {
            let problems = try integrityCheck(quick: true)
            guard problems.isEmpty else {
                throw SQLiteError(
                    path: path, operation: "PRAGMA quick_check", extendedCode: SQLITE_CORRUPT,
                    message: problems.prefix(5).joined(separator: "; "))
            }
        }
    }

    // MARK: Running SQL

    /// Runs one or more `;`-separated statements that take no parameters (DDL, PRAGMAs), ignoring
    /// any rows they return.
    public func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        defer { sqlite3_free(message) }
        guard code == SQLITE_OK else {
            var error = lastError(handle, code: code, path: path, operation: sql)
            if let message { error.message = String(cString: message) }
            throw error
        }
    }

    /// Prepares a new statement. Pass `persistent: true` for a statement kept for the whole life
    /// of the connection (SQLite then allocates it outside its short-lived lookaside memory).
    public func prepare(_ sql: String, persistent: Bool = false) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let flags = persistent ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let code = sqlite3_prepare_v3(handle, sql, -1, flags, &statement, nil)
        guard code == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            if code == SQLITE_OK {
                throw SQLiteError(path: path, operation: sql, extendedCode: SQLITE_MISUSE, message: "no SQL statement")
            }
            throw lastError(handle, code: code, path: path, operation: "prepare \(sql)")
        }
        return SQLiteStatement(handle: statement, sql: sql, path: path)
    }

    /// The connection's cached statement for `sql`, prepared (persistently) on first use and reset
    /// with cleared bindings on every call: the way to run hot-path SQL without preparing it again.
    /// Do not nest two uses of the same SQL text (the inner call resets the outer one's rows).
    public func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = cache[sql] {
            cached.reset()
            return cached
        }
        let statement = try prepare(sql, persistent: true)
        cache[sql] = statement
        return statement
    }

    /// Runs `sql` once through the statement cache with `values` bound to its parameters.
    public func execute(_ sql: String, _ values: SQLiteValue...) throws(SQLiteError) {
        try statement(sql).run(values)
    }

    /// The first column of the first row `sql` returns, as text (empty when there is no row).
    public func scalarText(_ sql: String, _ values: SQLiteValue...) throws(SQLiteError) -> String {
        let statement = try prepare(sql)
        try statement.bind(values)
        return try statement.step() ? statement.text(at: 0) : ""
    }

    /// The first column of the first row `sql` returns, as an integer (nil when there is no row).
    public func scalarInt64(_ sql: String, _ values: SQLiteValue...) throws(SQLiteError) -> Int64? {
        let statement = try statement(sql)
        defer { statement.reset() }
        try statement.bind(values)
        return try statement.step() ? statement.int64(at: 0) : nil
    }

    /// Makes every transaction committed so far durable, whatever `synchronous` is: fdatasync of
    /// the database file and of its WAL, where a commit in WAL mode wrote its frames (unsynced
    /// under `synchronous=NORMAL`). SQLite has no call for this, and a commit under
    /// `synchronous=FULL` is no substitute: one that changes no page (an UPDATE that writes the
    /// same bytes) writes no frame and syncs nothing. A failure is `SQLITE_IOERR_FSYNC`, and the
    /// caller must stop: after a failed fsync the kernel may have dropped the unwritten pages,
    /// and a later fsync can succeed without them.
    public func syncToDisk() throws(SQLiteError) {
        guard path != ":memory:", !path.isEmpty else { return }
        for file in [path, path + "-wal"] {
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                let code = errno
                // No WAL file: every commit is in the database file (a checkpoint synced it).
                if code == ENOENT && file != path { continue }
                throw SQLiteError(
                    path: file, operation: "open to fdatasync", extendedCode: SQLITE_IOERR,
                    message: String(cString: strerror(code)))
            }
            let failure = options.syncFile(fd)
            close(fd)
            if failure != 0 {
                throw SQLiteError(
                    path: file, operation: "fdatasync", extendedCode: SQLITE_IOERR | (4 << 8),
                    message: String(cString: strerror(failure)))
            }
        }
    }

    /// Rows changed by the most recent INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes64(handle)) }

    /// The rowid of the most recent successful INSERT.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// True when no transaction is open.
    public var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }
}

/// Facts about the linked SQLite library.
public enum SQLiteLibrary {
    /// The library's version, e.g. "3.40.1".
    public static var version: String { String(cString: sqlite3_libversion()) }
}
