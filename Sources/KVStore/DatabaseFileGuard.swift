import Synchronization

/// Serialises whole-file operations on one database between threads: a snapshot install (which
/// closes the database, renames another file over it and reopens it) and a checkpoint from a
/// background thread (which opens its own connection to the same path). Without it, closing that
/// connection after the rename could delete the new database's WAL by name.
public final class DatabaseFileGuard: Sendable {
    private let mutex = Mutex(())

    public init() {}

    /// Runs `body` while no other holder of this guard runs.
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try mutex.withLock { _ throws(E) -> T in try body() }
    }
}

/// How far a background checkpointer has copied one database's WAL, for the writer that finishes
/// the job between two of its transactions (`SQLiteConnection.checkpointIfWALExceeds`): it does
/// so only when little is left, so that the copy it makes in its own thread stays short.
public final class WALProgress: Sendable {
    private let copied = Mutex(0)

    public init() {}

    /// Bytes of the WAL file (from its start) the last background checkpoint had copied.
    public var copiedBytes: Int { copied.withLock { $0 } }

    /// Records a background checkpoint: `frames` frames of `pageBytes`-byte pages copied.
    public func record(frames: Int, pageBytes: Int) {
        copied.withLock { $0 = SQLiteConnection.walHeaderBytes + frames * (pageBytes + SQLiteConnection.walFrameHeaderBytes) }
    }

    /// The WAL started over: nothing of it is copied yet.
    public func reset() { copied.withLock { $0 = 0 } }
}
