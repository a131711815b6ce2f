public import RaftCore

/// What `kvd --restore-from` does to a backup's state before the new cluster serves it
/// (docs/CONFIGURATION.md, "Restoring from a backup").
extension StateSnapshotWriter {
    /// Ends every lease, as if each had expired, in one transaction: its keys are deleted, and
    /// every lock and lock queue goes with them (all are held by leases). Fences (the highest
    /// token each lock name has seen) stay, so that a fenced write with a token from before the
    /// backup is still refused in favour of a later one.
    ///
    /// Why: a lease's remaining TTL in the backup counts from the backup, and the restored
    /// cluster starts later; treating the lease as alive would hold it (and its locks) longer
    /// than its holder, who can no longer renew it at the old cluster, believes it is held. No
    /// lock passes to a waiter here: such a grant would need a log entry (tokens are indexes).
    /// Returns the number of leases ended.
    @discardableResult
    public func expireAllLeases() throws(StorageError) -> Int {
        guard let db else { throw .io("\(path): snapshot file already closed") }
        do {
            return try db.transaction { () throws(SQLiteError) -> Int in
                let leases = Int(try db.scalarInt64("SELECT count(*) FROM kv_leases") ?? 0)
                try db.execute("DELETE FROM kv_keys WHERE lease IS NOT NULL")
                try db.execute("DELETE FROM kv_lock_waiters")
                try db.execute("DELETE FROM kv_locks")
                try db.execute("DELETE FROM kv_leases")
                try db.execute("UPDATE kv_meta SET value = (SELECT count(*) FROM kv_keys) WHERE name = 'key_count'")
                return leases
            }
        } catch {
            throw error.storageError
        }
    }
}
