public import RaftCore

/// Keys: Redis-style SET/DEL/INCR plus compare-and-swap, each optionally fenced by a lock token.
extension KVStateMachine {
    /// One stored key.
    public struct Record: Hashable, Sendable {
        public var value: [UInt8]
        /// Index of the entry that created the key.
        public var createIndex: UInt64
        /// Index of the entry that last modified it.
        public var modIndex: UInt64
        /// The lease the key is attached to, if any.
        public var leaseID: UInt64?
        /// The key's deadline (Unix milliseconds on the leaders' clocks), if it has one.
        public var expiresAt: UInt64?

        /// Whether the key is gone at `clock` (its deadline has passed), though not yet deleted.
        func expired(at clock: UInt64) -> Bool {
            guard let expiresAt else { return false }
            return expiresAt <= clock
        }
    }

    /// The key's record, or nil if it does not exist or its deadline has passed by the applied
    /// state's clock (`clockMillis`): every replica at the same applied index answers the same.
    public func get(_ key: [UInt8]) throws(StorageError) -> Record? {
        do { return try visible(key) } catch { throw error.storageError }
    }

    /// The key's record unless its deadline has passed by `clockMillis`; never deletes.
    func visible(_ key: [UInt8]) throws(SQLiteError) -> Record? {
        try record(key).flatMap { $0.expired(at: clockMillis) ? nil : $0 }
    }

    /// How many of `keys` exist (a key named twice counts twice, as in Redis).
    public func countExisting(_ keys: [[UInt8]]) throws(StorageError) -> Int {
        do { return try existingCount(keys) } catch { throw error.storageError }
    }

    func existingCount(_ keys: [[UInt8]]) throws(SQLiteError) -> Int {
        var count = 0
        for key in keys where try visible(key) != nil { count += 1 }
        return count
    }

    /// The key's record for a write: a key whose deadline has passed by the entry's time is
    /// deleted first, so the write sees it missing (as Redis expires keys lazily).
    func current(_ key: [UInt8]) throws(SQLiteError) -> Record? {
        guard let found = try record(key) else { return nil }
        guard found.expired(at: clockMillis) else { return found }
        try remove(key)
        return nil
    }

    /// Deletes one key; returns whether it existed.
    @discardableResult
    func remove(_ key: [UInt8]) throws(SQLiteError) -> Bool {
        try db.execute("DELETE FROM kv_keys WHERE key = ?", .blob(key))
        keyCount -= db.changes
        return db.changes > 0
    }

    /// Keys starting with `prefix` in byte order, at most `limit` (capped by `listLimitMax`).
    public func list(prefix: [UInt8], limit: Int) throws(StorageError) -> [(key: [UInt8], record: Record)] {
        try list(prefix: prefix, limit: limit, bytesMax: Int.max) ?? []
    }

    /// `list` for a client's reply: nil if its keys and values would carry more than
    /// `replyBytesMax` bytes (rows past that point are not kept).
    public func listReply(prefix: [UInt8], limit: Int) throws(StorageError) -> [(key: [UInt8], record: Record)]? {
        try list(prefix: prefix, limit: limit, bytesMax: limits.replyBytesMax)
    }

    private func list(prefix: [UInt8], limit: Int, bytesMax: Int) throws(StorageError) -> [(key: [UInt8], record: Record)]? {
        let bound = min(max(limit, 0), limits.listLimitMax)
        var rows: [(key: [UInt8], record: Record)] = []
        var bytes = 0
        let clock = clockMillis
        let upper = Self.prefixUpperBound(prefix)
        let sql =
            upper == nil
            ? "SELECT key, value, create_index, mod_index, lease, expires_at FROM kv_keys WHERE key >= ?1 ORDER BY key LIMIT ?3"
            : "SELECT key, value, create_index, mod_index, lease, expires_at FROM kv_keys WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
        do {
            try db.statement(sql).forEachRow(
                [.blob(prefix), upper.map { .blob($0) } ?? .null, .integer(Int64(bound))], mapError: { $0 }
            ) { row throws(SQLiteError) in
                guard bytes <= bytesMax else { return }
                let record = Self.readRecord(row, from: 1)
                guard !record.expired(at: clock) else { return }
                let key = row.blob(at: 0)
                bytes += key.count + record.value.count
                if bytes <= bytesMax { rows.append((key, record)) }
            }
        } catch { throw error.storageError }
        return bytes <= bytesMax ? rows : nil
    }

    /// The smallest byte string greater than every string starting with `prefix`, or nil if none
    /// exists (the prefix is empty or all 0xFF).
    static func prefixUpperBound(_ prefix: [UInt8]) -> [UInt8]? {
        var bound = prefix
        while let last = bound.last {
            if last < 0xFF {
                bound[bound.count - 1] = last + 1
                return bound
            }
            bound.removeLast()
        }
        return nil
    }

    func record(_ key: [UInt8]) throws(SQLiteError) -> Record? {
        let statement = try db.statement("SELECT value, create_index, mod_index, lease, expires_at FROM kv_keys WHERE key = ?")
        defer { statement.reset() }
        try statement.bind(.blob(key))
        return try statement.step() ? Self.readRecord(statement, from: 0) : nil
    }

    static func readRecord(_ row: SQLiteStatement, from column: Int32) -> Record {
        Record(
            value: row.blob(at: column), createIndex: UInt64(row.int64(at: column + 1)),
            modIndex: UInt64(row.int64(at: column + 2)),
            leaseID: row.isNull(at: column + 3) ? nil : UInt64(row.int64(at: column + 3)),
            expiresAt: row.isNull(at: column + 4) ? nil : UInt64(row.int64(at: column + 4)))
    }

    /// Writes a key. `existing` is its record before the write (nil: the key is new), which
    /// keeps `keyCount` right.
    func store(
        _ key: [UInt8], _ value: [UInt8], existing: Record?, modIndex: UInt64, lease: UInt64?, expiresAt: UInt64? = nil
    ) throws(SQLiteError) {
        try db.execute(
            """
            INSERT INTO kv_keys(key, value, create_index, mod_index, lease, expires_at) VALUES(?, ?, ?, ?, ?, ?)
            ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_index = excluded.mod_index, lease = excluded.lease,
                expires_at = excluded.expires_at
            """, .blob(key), .blob(value), .integer(Int64(existing?.createIndex ?? modIndex)), .integer(Int64(modIndex)),
            lease.map { .integer(Int64($0)) } ?? .null, expiresAt.map { .integer(Int64(clamping: $0)) } ?? .null)
        if existing == nil { keyCount += 1 }
    }

    /// Refuses keys and values beyond the limits. Checked again here (not only when proposing)
    /// so that every replica agrees whatever the proposer did.
    func checkSizes(_ key: [UInt8], _ value: [UInt8]? = nil) -> KVError? {
        if key.count > limits.keyBytesMax { return .limitExceeded("key is \(key.count) bytes; the limit is \(limits.keyBytesMax)") }
        if let value, value.count > limits.valueBytesMax {
            return .limitExceeded("value is \(value.count) bytes; the limit is \(limits.valueBytesMax)")
        }
        return nil
    }

    func put(
        _ key: [UInt8], _ value: [UInt8], condition: PutCondition, lease: UInt64?, fence: FenceCondition?, index: UInt64
    ) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(key, value) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        if let lease, try leaseRecord(lease) == nil { return .error(.leaseNotFound(lease)) }
        let existing = try current(key)
        switch condition {
        case .always: break
        case .ifAbsent: if existing != nil { return .notApplied }
        case .ifPresent: if existing == nil { return .notApplied }
        }
        // As in Redis, SET replaces the value and drops any previous expiry (deadline and lease).
        try store(key, value, existing: existing, modIndex: index, lease: lease)
        return .ok
    }

    func delete(_ keys: [[UInt8]], fence: FenceCondition?) throws(SQLiteError) -> KVResult {
        if let error = try checkFence(fence) { return .error(error) }
        var count: Int64 = 0
        for key in keys where try current(key) != nil {
            try remove(key)
            count += 1
        }
        return .deleted(count: count)
    }

    func compareAndSwap(
        _ key: [UInt8], expected: CASExpectation, value: [UInt8], fence: FenceCondition?, index: UInt64
    ) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(key, value) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        let existing = try current(key)
        let matches: Bool
        switch expected {
        case .value(let old): matches = existing?.value == old
        case .absent: matches = existing == nil
        case .modIndex(let modIndex): matches = existing?.modIndex == modIndex
        }
        guard matches else { return .swapped(false, modIndex: existing?.modIndex ?? 0) }
        try store(key, value, existing: existing, modIndex: index, lease: existing?.leaseID, expiresAt: existing?.expiresAt)
        return .swapped(true, modIndex: index)
    }

    /// Redis INCRBY: a missing key counts as 0; the value must be a decimal 64-bit integer.
    func increment(_ key: [UInt8], by delta: Int64, fence: FenceCondition?, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(key) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        let existing = try current(key)
        var value: Int64 = 0
        if let existing {
            guard let parsed = Self.parseInteger(existing.value) else { return .error(.notInteger) }
            value = parsed
        }
        let (sum, overflow) = value.addingReportingOverflow(delta)
        if overflow { return .error(.overflow) }
        // As in Redis, INCR keeps the key's deadline.
        try store(key, Array(String(sum).utf8), existing: existing, modIndex: index, lease: existing?.leaseID,
            expiresAt: existing?.expiresAt)
        return .integer(sum)
    }

    /// Parses a decimal integer exactly as Redis accepts it: optional minus, digits, no spaces.
    static func parseInteger(_ bytes: [UInt8]) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let value = Int64(text), String(value) == text else { return nil }
        return value
    }
}
