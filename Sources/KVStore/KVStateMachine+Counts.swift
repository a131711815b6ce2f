import RaftCore

/// Row counts the state machine keeps in memory, so that the limits checked on the apply path
/// (`leasesMax` on every grant, `sessionsMax` on every registration) cost O(1) instead of a
/// `count(*)`, which SQLite answers by reading the whole table.
///
/// The counts are read from the database once, by `loadCounts` (through `loadMeta`, whenever the
/// database's contents are replaced); every insert and delete of a lease or session row adjusts
/// them by the rows it changed; `apply` puts them back when its transaction rolls back.
extension KVStateMachine {
    /// Reads `leaseCount` and `sessionCount` from the tables: O(rows), once per open or restore.
    func loadCounts() throws(StorageError) {
        do {
            leaseCount = Int(try db.scalarInt64("SELECT count(*) FROM kv_leases") ?? 0)
            sessionCount = Int(try db.scalarInt64("SELECT count(*) FROM kv_sessions") ?? 0)
        } catch {
            throw error.storageError
        }
    }
}
