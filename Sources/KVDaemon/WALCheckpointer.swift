#if canImport(Glibc)
import Glibc
#endif
public import KVStore
public import Logging
import NIOPosix
public import ServiceLifecycle

/// Checkpoints the node's SQLite databases from a thread of its own, so that the Raft loop never
/// copies WAL pages into a database file and fsyncs it in the middle of a commit (SQLite's
/// automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint`, which the
/// loop's connections set high, as a backstop only).
///
/// Every `intervalMillis` it looks at each database's WAL and, when it holds more than
/// `walBytesThreshold`, runs a PASSIVE checkpoint on a connection of its own: it copies what no
/// reader still needs and never blocks the writer. Under continuous writes it never quite catches
/// the writer, so the WAL file would only grow: the Raft loop therefore finishes the job now and
/// then (`RaftDriver.resetLongWALs`), copying the little that is left between two of its own
/// transactions, after which its next commit starts the WAL over. Durability does not depend on
/// any of this (commits are fsynced in the WAL); it only keeps the WAL short.
public struct WALCheckpointer: Service {
    /// A database to keep checkpointed, with the guard its owner holds while swapping the file.
    public struct Database: Sendable {
        public var path: String
        public var fileGuard: DatabaseFileGuard
        /// Where it records how far it copied, for the loop's own checkpoint.
        public var progress: WALProgress

        public init(path: String, fileGuard: DatabaseFileGuard, progress: WALProgress) {
            self.path = path
            self.fileGuard = fileGuard
            self.progress = progress
        }
    }

    let databases: [Database]
    let intervalMillis: Int
    let walBytesThreshold: Int
    let logger: Logger

    public init(databases: [Database], intervalMillis: Int = 100, walBytesThreshold: Int = 4 << 20, logger: Logger) {
        self.databases = databases
        self.intervalMillis = intervalMillis
        self.walBytesThreshold = walBytesThreshold
        self.logger = logger
    }

    /// Checkpoints until graceful shutdown. A disk failure (`mustStop`) ends it with an error,
    /// which stops the node: a checkpoint whose fsync failed must not be tried again later, since
    /// the kernel may have dropped the pages it could not write and a later fsync can succeed
    /// without them.
    public func run() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let databases = self.databases, threshold = walBytesThreshold, logger = self.logger
        var failure: SQLiteError?
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await pool.runIfActive { try Self.checkpoint(databases, threshold: threshold, logger: logger) }
                    try await Task.sleep(for: .milliseconds(intervalMillis))
                }
            }
        } catch let error as SQLiteError {
            failure = error
        } catch {
            // Cancelled: the node is stopping.
        }
        try await pool.shutdownGracefully()
        if let failure {
            logger.critical("background checkpoint failed; stopping the node: \(failure)")
            throw DaemonError.storage(failure.storageError)
        }
    }

    /// Whether a failed checkpoint must stop the node: an I/O error (`SQLITE_IOERR`: a failed
    /// read, write or fsync) or a damaged file. Anything else (a lock held by the writer, a full
    /// disk, which the Raft loop's own writes then report, no file descriptor left) is logged and
    /// tried again on the next pass.
    static func mustStop(_ error: SQLiteError) -> Bool {
        error.isCorruption || error.isIOError
    }

    static func checkpoint(_ databases: [Database], threshold: Int, logger: Logger) throws(SQLiteError) {
        for database in databases {
            // The file's size is its high-water mark (a WAL restarts from its beginning without
            // shrinking); a WAL that restarted since the last look has little to copy anyway.
            var info = stat()
            guard stat(database.path + "-wal", &info) == 0, Int(info.st_size) > threshold else { continue }
            try database.fileGuard.withLock { () throws(SQLiteError) in
                var options = SQLiteConnection.Options()
                options.create = false
                options.synchronous = .normal
                options.busyTimeoutMilliseconds = 0
                do throws(SQLiteError) {
                    let connection = try SQLiteConnection(path: database.path, options: options)
                    let (_, frames, copied) = try connection.checkpointPassive()
                    database.progress.record(frames: frames, copied: copied)
                } catch where error.isBusy {
                    // The write lock was taken or an old reader is still there: next time.
                } catch where mustStop(error) {
                    throw error
                } catch {
                    logger.warning("background checkpoint of \(database.path) failed: \(error)")
                }
            }
        }
    }
}
