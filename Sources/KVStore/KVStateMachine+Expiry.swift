public import RaftCore

/// Keys with a deadline (Redis's EXPIRE family). The rules are those of leases:
/// - a key is never removed before its deadline: only by an entry whose leader-stamped time has
///   passed it (`expireKeys`, or a write that finds it expired, see `current`);
/// - the removal is a replicated decision of the leader, never a follower's clock;
/// - reads hide a key once the applied state's clock (`clockMillis`, the highest stamped time)
///   has passed its deadline, so every replica at the same applied index agrees, and once a read
///   has seen it gone no later read sees it again (the clock never goes back);
/// - deadlines are absolute Unix times, so a new leader neither shortens nor extends them, within
///   the skew between the leaders' clocks (docs/PROTOCOL.md).
/// The leader finds due keys through an index holding only keys with a deadline: O(log n) per tick.
extension KVStateMachine {
    func expire(_ key: [UInt8], at time: ExpireTime, condition: ExpireCondition, index: UInt64) throws(SQLiteError) -> KVResult {
        guard let existing = try current(key) else { return .integer(0) }
        let wanted: Int64
        switch time {
        case .after(let millis):
            let (sum, overflow) = Int64(clamping: clockMillis).addingReportingOverflow(millis)
            guard !overflow else { return .error(.invalid("invalid expire time in 'expire' command")) }
            wanted = sum
        case .at(let unixMillis): wanted = unixMillis
        }
        var holds = true
        if condition.contains(.ifNone) { holds = holds && existing.expiresAt == nil }
        if condition.contains(.ifSome) { holds = holds && existing.expiresAt != nil }
        // No deadline counts as infinitely late: GT never holds, LT always does.
        if condition.contains(.ifLater) { holds = holds && existing.expiresAt.map { wanted > Int64(clamping: $0) } ?? false }
        if condition.contains(.ifEarlier) { holds = holds && existing.expiresAt.map { wanted < Int64(clamping: $0) } ?? true }
        guard holds else { return .integer(0) }
        if wanted <= Int64(clamping: clockMillis) {
            try remove(key)
            return .integer(1)
        }
        try store(key, existing.value, existing: existing, modIndex: index, lease: existing.leaseID, expiresAt: UInt64(wanted))
        return .integer(1)
    }

    func persist(_ key: [UInt8], index: UInt64) throws(SQLiteError) -> KVResult {
        guard let existing = try current(key), existing.expiresAt != nil else { return .integer(0) }
        try store(key, existing.value, existing: existing, modIndex: index, lease: existing.leaseID, expiresAt: nil)
        return .integer(1)
    }

    func getEx(_ key: [UInt8], change: GetExChange, index: UInt64) throws(SQLiteError) -> KVResult {
        guard let existing = try current(key) else { return .value(nil) }
        let expiresAt: UInt64?
        switch change {
        case .keep: return .value(existing.value)
        case .persist:
            guard existing.expiresAt != nil else { return .value(existing.value) }
            expiresAt = nil
        case .expire(let expiry):
            expiresAt = deadline(expiry, existing: existing)
            if let expiresAt, expiresAt <= clockMillis {
                try remove(key)
                return .value(existing.value)
            }
        }
        try store(key, existing.value, existing: existing, modIndex: index, lease: existing.leaseID, expiresAt: expiresAt)
        return .value(existing.value)
    }

    /// The leader's expiry entry: removes each key whose deadline the entry's time has passed.
    func expireKeys(_ keys: [[UInt8]]) throws(SQLiteError) -> KVResult {
        for key in keys {
            if let found = try record(key), found.expired(at: clockMillis) { try remove(key) }
        }
        return .none
    }

    /// Keys whose deadline is at or before `nowMillis`, earliest first, at most `limit`: what a
    /// leader proposes to expire. O(log n + limit) through the deadline index.
    public func dueExpiries(nowMillis: UInt64, limit: Int) throws(StorageError) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        do {
            try db.statement(
                "SELECT key FROM kv_keys WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at, key LIMIT ?"
            ).forEachRow(
                [.integer(Int64(clamping: nowMillis)), .integer(Int64(limit))], mapError: { $0 }
            ) { row throws(SQLiteError) in keys.append(row.blob(at: 0)) }
        } catch { throw error.storageError }
        return keys
    }
}
