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
