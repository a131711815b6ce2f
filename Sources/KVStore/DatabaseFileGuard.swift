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

/// How far a background checkpointer got with one database's WAL, for the writer that finishes
/// the job between two of its transactions (`SQLiteConnection.checkpointIfWALExceeds`): it does
/// so only when the WAL is long and little of it is left to copy, so that the copy it makes in
/// its own thread stays short.
public final class WALProgress: Sendable {
    private let state = Mutex((frames: 0, copied: 0))

    public init() {}

    /// Frames in the WAL and frames copied, as of the last background checkpoint.
    public var frames: (inWAL: Int, copied: Int) { state.withLock { ($0.frames, $0.copied) } }

    /// Records a background checkpoint's outcome.
    public func record(frames: Int, copied: Int) { state.withLock { $0 = (frames, copied) } }

    /// The WAL started over.
    public func reset() { state.withLock { $0 = (0, 0) } }
}
