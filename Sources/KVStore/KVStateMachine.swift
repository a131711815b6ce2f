public import RaftCore

/// The replicated state machine: keys, leases, locks with fencing tokens, fence registers and
/// client sessions, stored in SQLite.
///
/// Deterministic by construction: applying reads no clock and no randomness. The only time it
/// uses is `clockMillis`, the highest leader-stamped time among applied commands, so every
/// replica and every replay computes the same state. Each batch of entries and the applied index
/// commit in one transaction, so a restart never applies an entry twice.
///
/// Not thread-safe: one owner (the daemon's Raft loop) applies and reads.
public final class KVStateMachine {
    public let limits: KVLimits
    /// Replaced only by `replaceDatabase(with:)` when a snapshot is installed.
    var db: SQLiteConnection
    /// Held while the database file is swapped, if another thread opens the same file (see
    /// `DatabaseFileGuard`).
    public var fileGuard: DatabaseFileGuard?

    /// Index of the last applied entry.
    public private(set) var appliedIndex: LogIndex
    /// Highest entry term applied; an expiry or checkpoint stamped with an older leader term is
    /// stale and ignored.
    public private(set) var highestTerm: Term
    /// Highest leader-stamped time applied, in milliseconds; never goes back even if a new
    /// leader's clock is behind.
    public private(set) var clockMillis: UInt64
    /// Rows in `kv_leases`, the live leases: kept here so that a grant checks `leasesMax` without
    /// counting the table (see `loadCounts`).
    public internal(set) var leaseCount: Int
    /// Rows in `kv_sessions`, the registered sessions: kept here so that a registration checks
    /// `sessionsMax` without counting the table (see `loadCounts`).
    public internal(set) var sessionCount: Int
    /// Rows in `kv_keys`, for `DBSIZE`: kept in `kv_meta` with the applied index, so that neither
    /// opening nor installing a snapshot counts the table.
    public internal(set) var keyCount: Int

    /// Opens (creating if needed) the state tables in `database`.
    public init(database: SQLiteConnection, limits: KVLimits = KVLimits()) throws(StorageError) {
        self.db = database
        self.limits = limits
        var version: Int64?
        do {
            for statement in KVSchema.statements { try database.execute(statement) }
            version = try database.scalarInt64("SELECT value FROM kv_meta WHERE name = 'schema_version'")
            if version == nil {
                try database.execute("INSERT INTO kv_meta(name, value) VALUES('schema_version', ?)", .integer(KVSchema.version))
            }
            while let from = version, let steps = KVSchema.upgradeStatements[from] {
                try database.transaction(mapError: { $0 }) { () throws(SQLiteError) in
                    for statement in steps { try database.execute(statement) }
                }
                version = from + 1
            }
            if version == nil || version == KVSchema.version {
                for statement in KVSchema.indexStatements { try database.execute(statement) }
            }
        } catch {
            throw error.storageError
        }
        if let version, version != KVSchema.version {
            throw .corrupt("\(database.path): state schema version \(version), this kvd reads \(KVSchema.version)")
        }
        appliedIndex = .zero
        highestTerm = .zero
        clockMillis = 0
        leaseCount = 0
        sessionCount = 0
        keyCount = 0
        try loadMeta()
    }

    /// Reads everything this object keeps in memory from the database: the meta values, then the
    /// row counts. Whatever replaces the database's contents (opening, installing a snapshot)
    /// calls this, so the two can never disagree.
    func loadMeta() throws(StorageError) {
        appliedIndex = LogIndex(UInt64(try meta("applied_index")))
        highestTerm = Term(UInt64(try meta("highest_term")))
        clockMillis = UInt64(try meta("clock_ms"))
        keyCount = Int(try meta("key_count"))
        try loadCounts()
    }

    func meta(_ name: String) throws(StorageError) -> Int64 {
        do { return try db.scalarInt64("SELECT value FROM kv_meta WHERE name = ?", .text(name)) ?? 0 } catch {
            throw error.storageError
        }
    }

    func saveMeta() throws(SQLiteError) {
        let sql = "INSERT INTO kv_meta(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value"
        try db.execute(sql, "applied_index", .integer(Int64(appliedIndex.rawValue)))
        try db.execute(sql, "highest_term", .integer(Int64(highestTerm.rawValue)))
        try db.execute(sql, "clock_ms", .integer(Int64(clockMillis)))
        try db.execute(sql, "key_count", .integer(Int64(keyCount)))
    }

    /// Applies committed entries in order, in one transaction with the new applied index.
    /// Entries at or below the applied index are skipped (they were applied before a restart).
    /// A storage failure rolls the whole batch back and must stop the node.
    public func apply(_ entries: [Entry]) throws(StorageError) -> [KVApplied] {
        let pending = entries.filter { $0.index > appliedIndex }
        guard !pending.isEmpty else { return [] }
        // Everything kept in memory that applying changes, restored if the transaction rolls back.
        let before = (appliedIndex, highestTerm, clockMillis, leaseCount, sessionCount, keyCount)
        do {
            return try db.transaction(mapError: { $0 }) { () throws(SQLiteError) -> [KVApplied] in
                var results: [KVApplied] = []
                results.reserveCapacity(pending.count)
                for entry in pending {
                    precondition(entry.index == appliedIndex.next, "entries must be applied in order without gaps")
                    results.append(try applyOne(entry))
                    appliedIndex = entry.index
                }
                try saveMeta()
                return results
            }
        } catch {
            (appliedIndex, highestTerm, clockMillis, leaseCount, sessionCount, keyCount) = before
            throw error.storageError
        }
    }

    private func applyOne(_ entry: Entry) throws(SQLiteError) -> KVApplied {
        highestTerm = max(highestTerm, entry.term)
        var events: [KVEvent] = []
        let result: KVResult
        var origin: ProposalOrigin?
        switch entry.payload {
        case .noop, .membership:
            result = .none
        case .command(let bytes):
            let command: KVCommand
            do {
                command = try KVCommand(decoding: bytes)
            } catch {
                // Every replica sees the same bytes and gives the same answer; never trap.
                return KVApplied(
                    index: entry.index, term: entry.term, result: .error(.limitExceeded("undecodable command: \(error)")),
                    events: [])
            }
            clockMillis = max(clockMillis, command.timestampMillis)
            result = try applySession(command, at: entry, events: &events)
            origin = command.origin
        }
        return KVApplied(index: entry.index, term: entry.term, result: result, events: events, origin: origin)
    }

    /// Applies `command` at most once per session sequence number (thesis §6.3).
    private func applySession(_ command: KVCommand, at entry: Entry, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        guard let stamp = command.session, command.operation != .sessionRegister else {
            return try applyOperation(command.operation, at: entry, events: &events)
        }
        guard let session = try liveSession(stamp.clientID) else { return .error(.sessionExpired(stamp.clientID)) }
        if stamp.sequence == session.lastSequence, let reply = session.lastReply {
            try touchSession(stamp.clientID, sequence: session.lastSequence, reply: reply)
            return (try? KVResult(decoding: reply)) ?? .error(.limitExceeded("kept reply is unreadable"))
        }
        if stamp.sequence <= session.lastSequence { return .error(.sequenceTooOld(stamp.sequence)) }
        let result = try applyOperation(command.operation, at: entry, events: &events)
        try touchSession(stamp.clientID, sequence: stamp.sequence, reply: result.encoded())
        return result
    }

    func applyOperation(_ operation: KVOperation, at entry: Entry, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        let index = entry.index.rawValue
        switch operation {
        case .put(let key, let value, let condition, let lease, let fence):
            return try put(key, value, condition: condition, lease: lease, fence: fence, index: index)
        case .delete(let keys, let fence):
            return try delete(keys, fence: fence)
        case .compareAndSwap(let key, let expected, let value, let fence):
            return try compareAndSwap(key, expected: expected, value: value, fence: fence, index: index)
        case .increment(let key, let delta, let fence):
            return try increment(key, by: delta, fence: fence, index: index)
        case .leaseGrant(let ttl):
            return try grantLease(ttlMillis: ttl, index: index, events: &events)
        case .leaseKeepAlive(let id):
            return try keepAlive(id, events: &events)
        case .leaseRevoke(let id):
            return try endLease(id, expired: false, index: index, events: &events) ? .leaseRevoked : .error(.leaseNotFound(id))
        case .leaseExpire(let id, let term, let epoch):
            return try expireLease(id, leaderTerm: term, epoch: epoch, index: index, events: &events)
        case .leaseCheckpoint(let term, let checkpoints):
            return try checkpointLeases(leaderTerm: term, checkpoints)
        case .lockAcquire(let name, let lease, let wait):
            return try acquireLock(name, lease: lease, wait: wait, index: index)
        case .lockRelease(let name, let token):
            return try releaseLock(name, token: token, index: index, events: &events)
        case .fence(let name, let token):
            return try raiseFence(name, token: token)
        case .sessionRegister:
            return try registerSession(index: index, events: &events)
        case .set(let request): return try set(request, index: index)
        case .expire(let key, let time, let condition): return try expire(key, at: time, condition: condition, index: index)
        case .persist(let key): return try persist(key, index: index)
        case .getEx(let key, let change): return try getEx(key, change: change, index: index)
        case .getDelete(let key): return try getDelete(key)
        case .deleteIf(let key, let condition, let fence): return try deleteIf(key, condition, fence: fence)
        case .append(let key, let value, let fence): return try append(key, value, fence: fence, index: index)
        case .setRange(let key, let offset, let value, let fence):
            return try setRange(key, offset: offset, value, fence: fence, index: index)
        case .incrementFloat(let key, let delta, let fence): return try incrementFloat(key, by: delta, fence: fence, index: index)
        case .rename(let from, let to, let onlyIfAbsent): return try rename(from: from, to: to, onlyIfAbsent: onlyIfAbsent, index: index)
        case .copy(let from, let to, let replace): return try copy(from: from, to: to, replace: replace, index: index)
        case .multiSet(let pairs, let onlyIfNoneExist): return try multiSet(pairs, onlyIfNoneExist: onlyIfNoneExist, index: index)
        case .flush: return try flush()
        case .expireKeys(let keys): return try expireKeys(keys)
        case .transaction(let operations, let watches):
            return try transaction(operations, watches: watches, at: entry, events: &events)
        case .read(let read): return try readApplied(read, nowMillis: clockMillis)
        case .memberSet(let member): return try setMember(member, events: &events)
        case .memberRemove(let id): return try removeMember(id, events: &events)
        }
    }
}

extension KVStateMachine: ReplicatedStateMachine {
    /// Applies one entry in its own transaction (see `apply(_:)` for batches).
    public func apply(_ entry: Entry) throws(StorageError) -> KVApplied {
        let results = try apply([entry])
        return results.first ?? KVApplied(index: entry.index, term: entry.term, result: .none, events: [])
    }
}
