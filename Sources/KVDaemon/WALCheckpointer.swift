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

    public func run() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let databases = self.databases, threshold = walBytesThreshold, logger = self.logger
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await pool.runIfActive { Self.checkpoint(databases, threshold: threshold, logger: logger) }
                try await Task.sleep(for: .milliseconds(intervalMillis))
            }
        }
        try await pool.shutdownGracefully()
    }

    static func checkpoint(_ databases: [Database], threshold: Int, logger: Logger) {
        for database in databases {
            // The file's size is its high-water mark (a WAL restarts from its beginning without
            // shrinking); a WAL that restarted since the last look has little to copy anyway.
            var info = stat()
            guard stat(database.path + "-wal", &info) == 0, Int(info.st_size) > threshold else { continue }
            database.fileGuard.withLock {
                var options = SQLiteConnection.Options()
                options.create = false
                options.synchronous = .normal
                options.busyTimeoutMilliseconds = 0
                do {
                    let connection = try SQLiteConnection(path: database.path, options: options)
                    let (_, frames, copied) = try connection.checkpointPassive()
                    database.progress.record(frames: frames, copied: copied)
                } catch let error as SQLiteError where error.isBusy {
                    // The write lock was taken or an old reader is still there: next time.
                } catch {
                    logger.warning("background checkpoint of \(database.path) failed: \(error)")
                }
            }
        }
    }
}
