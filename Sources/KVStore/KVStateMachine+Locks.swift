public import RaftCore

/// Locks held by leases, with fencing tokens, and fence registers.
///
/// A fencing token is the log index of the entry that granted the lock, so tokens strictly
/// increase per lock and are never reused — across leader changes, restarts and snapshots —
/// without any counter to keep. A lease lock alone cannot guarantee mutual exclusion in an
/// asynchronous network (a holder may pause past its lease); the token is what lets the store
/// and other resources refuse a superseded holder.
extension KVStateMachine {
    /// The holder of a lock.
    public struct LockHolder: Hashable, Sendable {
        public var leaseID: UInt64
        public var token: UInt64
        public init(leaseID: UInt64, token: UInt64) {
            self.leaseID = leaseID
            self.token = token
        }
    }

    /// Who holds `name`, or nil if it is free.
    public func lockOwner(_ name: [UInt8]) throws(StorageError) -> LockHolder? {
        do { return try holder(name) } catch { throw error.storageError }
    }

    /// The highest token fence register `name` has accepted, or nil.
    public func fenceToken(_ name: [UInt8]) throws(StorageError) -> UInt64? {
        do {
            return try db.scalarInt64("SELECT token FROM kv_fences WHERE name = ?", .blob(name)).map { UInt64($0) }
        } catch { throw error.storageError }
    }

    func holder(_ name: [UInt8]) throws(SQLiteError) -> LockHolder? {
        let statement = try db.statement("SELECT lease, token FROM kv_locks WHERE name = ?")
        defer { statement.reset() }
        try statement.bind(.blob(name))
        guard try statement.step() else { return nil }
        return LockHolder(leaseID: UInt64(statement.int64(at: 0)), token: UInt64(statement.int64(at: 1)))
    }

    func acquireLock(_ name: [UInt8], lease: UInt64, wait: Bool, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(name) { return .error(error) }
        guard try leaseRecord(lease) != nil else { return .error(.leaseNotFound(lease)) }
        guard let current = try holder(name) else {
            try db.execute(
                "INSERT INTO kv_locks(name, lease, token) VALUES(?, ?, ?)", .blob(name), .integer(Int64(lease)),
                .integer(Int64(index)))
            return .lockGranted(token: index)
        }
        // The same lease asking again holds it already: same token (idempotent retry).
        if current.leaseID == lease { return .lockGranted(token: current.token) }
        guard wait else { return .lockBusy(holderToken: current.token) }
        if let position = try queuePosition(name, lease: lease) { return .lockQueued(position: position) }
        let queued = try db.scalarInt64("SELECT count(*) FROM kv_lock_waiters WHERE name = ?", .blob(name)) ?? 0
        guard queued < limits.lockWaitersMax else {
            return .error(.limitExceeded("too many waiters on this lock (limit \(limits.lockWaitersMax))"))
        }
        try db.execute(
            "INSERT INTO kv_lock_waiters(name, seq, lease) VALUES(?, ?, ?)", .blob(name), .integer(Int64(index)),
            .integer(Int64(lease)))
        return .lockQueued(position: queued + 1)
    }

    /// 1-based place of `lease` in the queue of `name`, if it waits there.
    func queuePosition(_ name: [UInt8], lease: UInt64) throws(SQLiteError) -> Int64? {
        guard let seq = try db.scalarInt64(
            "SELECT seq FROM kv_lock_waiters WHERE name = ? AND lease = ?", .blob(name), .integer(Int64(lease)))
        else { return nil }
        let ahead = try db.scalarInt64(
            "SELECT count(*) FROM kv_lock_waiters WHERE name = ? AND seq < ?", .blob(name), .integer(seq)) ?? 0
        return ahead + 1
    }

    /// Releases `name` if `token` holds it, passing it to the next live waiter.
    func releaseLock(_ name: [UInt8], token: UInt64, index: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        guard let current = try holder(name), current.token == token else { return .error(.lockNotHeld) }
        try db.execute("DELETE FROM kv_locks WHERE name = ?", .blob(name))
        try grantNextWaiter(name, index: index, events: &events)
        return .lockReleased
    }

    /// Grants `name` to the first waiter whose lease is still alive, re-checked in this same
    /// apply step (the Jepsen finding against etcd locks, etcd #11456). Its token is `index`.
    func grantNextWaiter(_ name: [UInt8], index: UInt64, events: inout [KVEvent]) throws(SQLiteError) {
        while true {
            let statement = try db.statement("SELECT seq, lease FROM kv_lock_waiters WHERE name = ? ORDER BY seq LIMIT 1")
            try statement.bind(.blob(name))
            guard try statement.step() else {
                statement.reset()
                return
            }
            let seq = statement.int64(at: 0)
            let lease = UInt64(statement.int64(at: 1))
            statement.reset()
            try db.execute("DELETE FROM kv_lock_waiters WHERE name = ? AND seq = ?", .blob(name), .integer(seq))
            guard try leaseRecord(lease) != nil else { continue }
            try db.execute(
                "INSERT INTO kv_locks(name, lease, token) VALUES(?, ?, ?)", .blob(name), .integer(Int64(lease)),
                .integer(Int64(index)))
            events.append(.lockGranted(name: name, leaseID: lease, token: index))
            return
        }
    }

    /// A fenced write proceeds only while `fence.lock` is held with exactly `fence.token`.
    func checkFence(_ fence: FenceCondition?) throws(SQLiteError) -> KVError? {
        guard let fence else { return nil }
        guard let current = try holder(fence.lock), current.token == fence.token else {
            return .stale("lock \(String(decoding: fence.lock, as: UTF8.self)) is not held with token \(fence.token)")
        }
        return nil
    }

    /// A fence register accepts a token at least as high as any it has seen, and raises to it.
    func raiseFence(_ name: [UInt8], token: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(name) { return .error(error) }
        if let highest = try db.scalarInt64("SELECT token FROM kv_fences WHERE name = ?", .blob(name)), UInt64(highest) > token {
            return .error(.stale("fence \(String(decoding: name, as: UTF8.self)) has seen token \(highest) > \(token)"))
        }
        try db.execute(
            "INSERT INTO kv_fences(name, token) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET token = excluded.token",
            .blob(name), .integer(Int64(token)))
        return .fenceAccepted(token: token)
    }
}
