public import RaftCore

/// Reads of keys with Redis's replies, and the transactions (`MULTI ... EXEC`) that may contain
/// them. Outside a transaction a read runs against the applied state at a read index; inside one
/// it runs when the transaction's entry applies, after the transaction's earlier writes.
extension KVStateMachine {
    /// Runs `read` against the applied state. `nowMillis` is the time `TTL` counts down from:
    /// the entry's time inside a transaction, the later of the node's clock and `clockMillis`
    /// outside one (the applied clock only moves when entries apply).
    public func read(_ read: KVRead, nowMillis: UInt64) throws(StorageError) -> KVResult {
        do { return try readApplied(read, nowMillis: nowMillis) } catch { throw error.storageError }
    }

    func readApplied(_ read: KVRead, nowMillis: UInt64) throws(SQLiteError) -> KVResult {
        switch read {
        case .get(let key): return .value(try visible(key)?.value)
        case .mget(let keys):
            var values: [[UInt8]?] = []
            var bytes = 0
            for key in keys {
                let value = try visible(key)?.value
                bytes += value?.count ?? 0
                guard bytes <= limits.replyBytesMax else { return .error(Self.replyTooLarge("MGET", limits.replyBytesMax)) }
                values.append(value)
            }
            return .values(values)
        case .exists(let keys): return .integer(Int64(try existingCount(keys)))
        case .strlen(let key): return .integer(Int64(try visible(key)?.value.count ?? 0))
        case .type(let key): return .status(try visible(key) == nil ? "none" : "string")
        case .getRange(let key, let start, let end):
            return .value(Self.range(of: try visible(key)?.value ?? [], start: start, end: end))
        case .ttl(let key, let form):
            guard let record = try visible(key) else { return .integer(-2) }
            guard let expiresAt = record.expiresAt else { return .integer(-1) }
            let remaining = expiresAt > nowMillis ? expiresAt - nowMillis : 0
            switch form {
            case .seconds: return .integer(Int64(clamping: (remaining + 500) / 1000))
            case .millis: return .integer(Int64(clamping: remaining))
            case .unixSeconds: return .integer(Int64(clamping: expiresAt / 1000))
            case .unixMillis: return .integer(Int64(clamping: expiresAt))
            }
        case .dbsize: return .integer(Int64(keyCount))
        case .echo(let message): return message.map { .value($0) } ?? .status("PONG")
        }
    }

    /// The refusal of a reply that would carry more than `bytesMax` bytes.
    public static func replyTooLarge(_ command: String, _ bytesMax: Int) -> KVError {
        .limitExceeded("\(command) reply would exceed \(bytesMax) bytes (client-reply-bytes-max): ask for fewer keys")
    }

    /// `GETRANGE`'s bytes, by Redis's rules: negative offsets count from the end, both ends are
    /// clamped to the value, and an empty or inverted range is empty.
    public static func range(of value: [UInt8], start: Int64, end: Int64) -> [UInt8] {
        let count = Int64(value.count)
        guard count > 0 else { return [] }
        let first = max(0, start < 0 ? count + start : start)
        let last = min(count - 1, max(0, end < 0 ? count + end : end))
        guard first <= last else { return [] }
        return Array(value[Int(first)...Int(last)])
    }

    /// Each key's modification index (0 if it does not exist or has expired), for `WATCH`.
    public func versions(_ keys: [[UInt8]]) throws(StorageError) -> [UInt64] {
        var versions: [UInt64] = []
        for key in keys { versions.append(try get(key)?.modIndex ?? 0) }
        return versions
    }

    /// Up to `limit` live keys after `after` (or from the start) that begin with `prefix`, in
    /// byte order, and the last key examined (live or not): the cursor to continue from, nil once
    /// the range is exhausted. Examines at most `limit` rows.
    public func scanKeys(prefix: [UInt8], after: [UInt8]?, limit: Int) throws(StorageError) -> (keys: [[UInt8]], last: [UInt8]?) {
        let bound = max(1, limit)
        let upper = Self.prefixUpperBound(prefix)
        var keys: [[UInt8]] = []
        var last: [UInt8]?
        var examined = 0
        let clock = clockMillis
        // Continue after the cursor, unless it lies before the prefix's range.
        var lower = prefix
        var comparison = ">="
        if let after, !after.lexicographicallyPrecedes(prefix) {
            lower = after
            comparison = ">"
        }
        let sql =
            "SELECT key, expires_at FROM kv_keys WHERE key \(comparison) ?1" + (upper == nil ? "" : " AND key < ?2")
            + " ORDER BY key LIMIT ?3"
        do {
            try db.statement(sql).forEachRow(
                [.blob(lower), upper.map { .blob($0) } ?? .null, .integer(Int64(bound))], mapError: { $0 }
            ) { row throws(SQLiteError) in
                let key = row.blob(at: 0)
                examined += 1
                last = key
                if row.isNull(at: 1) || UInt64(row.int64(at: 1)) > clock { keys.append(key) }
            }
        } catch { throw error.storageError }
        return (keys, examined < bound ? nil : last)
    }

    /// Applies a transaction: nothing if a watched key's modification index changed, else every
    /// operation in order. A failing operation does not undo the others (Redis's rule).
    func transaction(
        _ operations: [KVOperation], watches: [WatchedKey], at entry: Entry, events: inout [KVEvent]
    ) throws(SQLiteError) -> KVResult {
        for watch in watches where (try current(watch.key)?.modIndex ?? 0) != watch.modIndex { return .transaction(nil) }
        var results: [KVResult] = []
        results.reserveCapacity(operations.count)
        var replyBytes = 0
        for operation in operations {
            switch operation {
            case .read(let read):
                // Reads do not change the state, so refusing one past the reply limit is safe.
                let result = try readApplied(read, nowMillis: clockMillis)
                replyBytes += result.valueBytes
                results.append(replyBytes <= limits.replyBytesMax ? result : .error(Self.replyTooLarge("EXEC", limits.replyBytesMax)))
            case .transaction, .leaseExpire, .leaseCheckpoint, .expireKeys, .sessionRegister, .lockAcquire, .leaseGrant:
                results.append(.error(.invalid("this command cannot run inside MULTI")))
            default:
                results.append(try applyOperation(operation, at: entry, events: &events))
            }
        }
        return .transaction(results)
    }
}

extension KVResult {
    /// Bytes of values this result carries (what a reply limit counts).
    var valueBytes: Int {
        switch self {
        case .value(let value): return value?.count ?? 0
        case .values(let values): return values.reduce(0) { $0 + ($1?.count ?? 0) }
        default: return 0
        }
    }
}
