public import RaftCore

/// Leases: granted, renewed and revoked through the log; ended by time only through a
/// leader-proposed expiry that names the leader's term and the lease's renewal epoch.
extension KVStateMachine {
    /// One lease as the state machine knows it. `remainingMillis` is the TTL left at the last
    /// checkpoint or renewal: a new leader starts counting from it, never from the full TTL.
    public struct LeaseRecord: Hashable, Sendable {
        public var id: UInt64
        public var ttlMillis: UInt64
        public var remainingMillis: UInt64
        /// Incremented by every keepalive; an expiry for an older epoch does nothing.
        public var epoch: UInt64
    }

    /// The lease, or nil if it does not exist (never granted, revoked or expired).
    public func lease(_ id: UInt64) throws(StorageError) -> LeaseRecord? {
        do { return try leaseRecord(id) } catch { throw error.storageError }
    }

    /// Every live lease, by id.
    public func allLeases() throws(StorageError) -> [LeaseRecord] {
        var leases: [LeaseRecord] = []
        do {
            try db.statement("SELECT id, ttl_ms, remaining_ms, epoch FROM kv_leases ORDER BY id").forEachRow(
                [], mapError: { $0 }
            ) { row throws(SQLiteError) in leases.append(Self.readLease(row)) }
        } catch { throw error.storageError }
        return leases
    }

    /// Keys attached to a lease, for `lease ttl --keys`.
    public func keys(attachedTo id: UInt64) throws(StorageError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        do {
            try db.statement("SELECT key FROM kv_keys WHERE lease = ? ORDER BY key").forEachRow(
                [.integer(Int64(id))], mapError: { $0 }
            ) { row throws(SQLiteError) in keys.append(row.blob(at: 0)) }
        } catch { throw error.storageError }
        return keys
    }

    func leaseRecord(_ id: UInt64) throws(SQLiteError) -> LeaseRecord? {
        let statement = try db.statement("SELECT id, ttl_ms, remaining_ms, epoch FROM kv_leases WHERE id = ?")
        defer { statement.reset() }
        try statement.bind(.integer(Int64(bitPattern: id)))
        return try statement.step() ? Self.readLease(statement) : nil
    }

    static func readLease(_ row: SQLiteStatement) -> LeaseRecord {
        LeaseRecord(
            id: UInt64(row.int64(at: 0)), ttlMillis: UInt64(row.int64(at: 1)), remainingMillis: UInt64(row.int64(at: 2)),
            epoch: UInt64(row.int64(at: 3)))
    }

    /// The lease id is the index of the granting entry: unique, never reused.
    func grantLease(ttlMillis: UInt64, index: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        guard ttlMillis >= limits.leaseTTLMillisMin else { return .error(.ttlTooShort(minimumMillis: limits.leaseTTLMillisMin)) }
        guard ttlMillis <= limits.leaseTTLMillisMax else {
            return .error(.limitExceeded("TTL above the maximum of \(limits.leaseTTLMillisMax) ms"))
        }
        guard leaseCount < limits.leasesMax else { return .error(.limitExceeded("too many leases (limit \(limits.leasesMax))")) }
        try db.execute(
            "INSERT INTO kv_leases(id, ttl_ms, remaining_ms, epoch) VALUES(?, ?, ?, 0)", .integer(Int64(index)),
            .integer(Int64(ttlMillis)), .integer(Int64(ttlMillis)))
        leaseCount += db.changes
        events.append(.leaseGranted(leaseID: index, ttlMillis: ttlMillis))
        return .leaseGranted(leaseID: index, ttlMillis: ttlMillis)
    }

    func keepAlive(_ id: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        guard let lease = try leaseRecord(id) else { return .error(.leaseNotFound(id)) }
        try db.execute(
            "UPDATE kv_leases SET remaining_ms = ttl_ms, epoch = epoch + 1 WHERE id = ?", .integer(Int64(id)))
        events.append(.leaseRenewed(leaseID: id, epoch: lease.epoch + 1, ttlMillis: lease.ttlMillis))
        return .leaseRenewed(ttlMillis: lease.ttlMillis)
    }

    /// A leader's expiry: applied only if no newer leader was elected since it was proposed and
    /// the lease was not renewed since: a deposed leader cannot end a lease that a newer one keeps
    /// alive, and a renewal that raced the expiry wins.
    func expireLease(
        _ id: UInt64, leaderTerm: UInt64, epoch: UInt64, index: UInt64, events: inout [KVEvent]
    ) throws(SQLiteError) -> KVResult {
        guard leaderTerm >= highestTerm.rawValue, let lease = try leaseRecord(id), lease.epoch == epoch else { return .none }
        _ = try endLease(id, expired: true, index: index, events: &events)
        return .none
    }

    func checkpointLeases(leaderTerm: UInt64, _ checkpoints: [LeaseCheckpoint]) throws(SQLiteError) -> KVResult {
        guard leaderTerm >= highestTerm.rawValue else { return .none }
        for checkpoint in checkpoints {
            try db.execute(
                "UPDATE kv_leases SET remaining_ms = min(remaining_ms, ?) WHERE id = ? AND epoch = ?",
                .integer(Int64(min(checkpoint.remainingMillis, UInt64(Int64.max)))), .integer(Int64(checkpoint.leaseID)),
                .integer(Int64(checkpoint.epoch)))
        }
        return .none
    }

    /// Ends a lease in one step: its keys vanish, its queued lock requests leave the queues,
    /// and each lock it held passes to the next waiter whose lease is alive.
    func endLease(_ id: UInt64, expired: Bool, index: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> Bool {
        guard try leaseRecord(id) != nil else { return false }
        let lease = SQLiteValue.integer(Int64(id))
        try db.execute("DELETE FROM kv_leases WHERE id = ?", lease)
        leaseCount -= db.changes
        try db.execute("DELETE FROM kv_keys WHERE lease = ?", lease)
        keyCount -= db.changes
        try db.execute("DELETE FROM kv_lock_waiters WHERE lease = ?", lease)
        var held: [[UInt8]] = []
        try db.statement("SELECT name FROM kv_locks WHERE lease = ? ORDER BY name").forEachRow(
            [lease], mapError: { $0 }
        ) { row throws(SQLiteError) in held.append(row.blob(at: 0)) }
        for name in held {
            try db.execute("DELETE FROM kv_locks WHERE name = ?", .blob(name))
            try grantNextWaiter(name, index: index, events: &events)
        }
        events.append(.leaseEnded(leaseID: id, expired: expired))
        return true
    }
}
