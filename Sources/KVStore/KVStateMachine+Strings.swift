/// Redis's string commands beyond SET/DEL/INCR, applied with Redis's replies. Every write sees a
/// key whose deadline has passed by the entry's time as missing (`current`), and keeps the key's
/// deadline and lease unless the command replaces them, as Redis does.
extension KVStateMachine {
    /// A deadline asked for at the entry's time, or nil for none.
    func deadline(_ expiry: KeyExpiry, existing: Record?) -> UInt64? {
        switch expiry {
        case .none: return nil
        case .keep: return existing?.expiresAt
        case .after(let millis): return clockMillis.addingReportingOverflow(millis).overflow ? UInt64.max : clockMillis + millis
        case .at(let unixMillis): return unixMillis
        }
    }

    func set(_ request: SetRequest, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(request.key, request.value) { return .error(error) }
        if let error = try checkFence(request.fence) { return .error(error) }
        let existing = try current(request.key)
        let holds: Bool
        switch request.condition {
        case .always: holds = true
        case .ifAbsent: holds = existing == nil
        case .ifPresent: holds = existing != nil
        case .value(.equal(let expected)): holds = existing?.value == expected
        case .value(.notEqual(let unexpected)): holds = existing?.value != unexpected
        }
        let answer: KVResult = request.returnPrevious ? .value(existing?.value) : .ok
        guard holds else { return request.returnPrevious ? answer : .notApplied }
        let expiresAt = deadline(request.expiry, existing: existing)
        if let expiresAt, expiresAt <= clockMillis {
            // A deadline already past: the key is set and gone at once.
            if existing != nil { try remove(request.key) }
            return answer
        }
        let lease = request.expiry == .keep ? existing?.leaseID : nil
        try store(request.key, request.value, existing: existing, modIndex: index, lease: lease, expiresAt: expiresAt)
        return answer
    }

    func getDelete(_ key: [UInt8]) throws(SQLiteError) -> KVResult {
        guard let existing = try current(key) else { return .value(nil) }
        try remove(key)
        return .value(existing.value)
    }

    func deleteIf(_ key: [UInt8], _ condition: ValueCondition, fence: FenceCondition?) throws(SQLiteError) -> KVResult {
        if let error = try checkFence(fence) { return .error(error) }
        guard let existing = try current(key) else { return .integer(0) }
        switch condition {
        case .equal(let expected): guard existing.value == expected else { return .integer(0) }
        case .notEqual(let unexpected): guard existing.value != unexpected else { return .integer(0) }
        }
        try remove(key)
        return .integer(1)
    }

    func append(_ key: [UInt8], _ suffix: [UInt8], fence: FenceCondition?, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(key) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        let existing = try current(key)
        let value = (existing?.value ?? []) + suffix
        if let error = checkSizes(key, value) { return .error(error) }
        try store(key, value, existing: existing, modIndex: index, lease: existing?.leaseID, expiresAt: existing?.expiresAt)
        return .integer(Int64(value.count))
    }

    func setRange(_ key: [UInt8], offset: UInt64, _ bytes: [UInt8], fence: FenceCondition?, index: UInt64) throws(SQLiteError)
        -> KVResult
    {
        if let error = checkSizes(key) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        let existing = try current(key)
        var value = existing?.value ?? []
        // As in Redis, an empty write changes nothing and creates no key.
        guard !bytes.isEmpty else { return .integer(Int64(value.count)) }
        guard offset <= UInt64(limits.valueBytesMax), Int(offset) + bytes.count <= limits.valueBytesMax else {
            return .error(.invalid("string exceeds maximum allowed size (\(limits.valueBytesMax) bytes)"))
        }
        let start = Int(offset)
        if value.count < start + bytes.count { value += [UInt8](repeating: 0, count: start + bytes.count - value.count) }
        value.replaceSubrange(start..<(start + bytes.count), with: bytes)
        try store(key, value, existing: existing, modIndex: index, lease: existing?.leaseID, expiresAt: existing?.expiresAt)
        return .integer(Int64(value.count))
    }

    /// Redis INCRBYFLOAT: the stored value and the increment must be finite decimal numbers; the
    /// result is stored (and returned) as text, keeping the key's deadline.
    func incrementFloat(_ key: [UInt8], by delta: Double, fence: FenceCondition?, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(key) { return .error(error) }
        if let error = try checkFence(fence) { return .error(error) }
        let existing = try current(key)
        var value = 0.0
        if let existing {
            guard let parsed = Self.parseFloat(existing.value) else { return .error(.invalid("value is not a valid float")) }
            value = parsed
        }
        let sum = value + delta
        guard sum.isFinite else { return .error(.invalid("increment would produce NaN or Infinity")) }
        let text = Array(Self.formatFloat(sum).utf8)
        try store(key, text, existing: existing, modIndex: index, lease: existing?.leaseID, expiresAt: existing?.expiresAt)
        return .value(text)
    }

    /// A decimal number as Redis's INCRBYFLOAT accepts it (the stored value and the increment):
    /// no spaces, no hexadecimal, finite.
    public static func parseFloat(_ bytes: [UInt8]) -> Double? {
        guard !bytes.isEmpty, bytes.count <= 64,
            bytes.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 45 || $0 == 43 || $0 == 101 || $0 == 69 }),
            let value = Double(String(decoding: bytes, as: UTF8.self)), value.isFinite
        else { return nil }
        return value
    }

    /// The shortest text that reads back as `value`, without a trailing `.0` or an exponent for
    /// integral values below 10^17 (Redis prints `3`, not `3.0`).
    static func formatFloat(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e17 { return String(Int64(value)) }
        return "\(value)"
    }

    func rename(from source: [UInt8], to destination: [UInt8], onlyIfAbsent: Bool, index: UInt64) throws(SQLiteError)
        -> KVResult
    {
        if let error = checkSizes(destination) { return .error(error) }
        guard let moved = try current(source) else { return .error(.invalid("no such key")) }
        if source == destination { return onlyIfAbsent ? .integer(0) : .ok }
        let target = try current(destination)
        if onlyIfAbsent, target != nil { return .integer(0) }
        try remove(source)
        try store(destination, moved.value, existing: target, modIndex: index, lease: moved.leaseID, expiresAt: moved.expiresAt)
        return onlyIfAbsent ? .integer(1) : .ok
    }

    /// Redis COPY: the copy takes the deadline, not the lease (a lease's keys are the ones it was
    /// granted for).
    func copy(from source: [UInt8], to destination: [UInt8], replace: Bool, index: UInt64) throws(SQLiteError) -> KVResult {
        if let error = checkSizes(destination) { return .error(error) }
        if source == destination { return .error(.invalid("source and destination objects are the same")) }
        guard let original = try current(source) else { return .integer(0) }
        let target = try current(destination)
        if target != nil, !replace { return .integer(0) }
        try store(destination, original.value, existing: target, modIndex: index, lease: nil, expiresAt: original.expiresAt)
        return .integer(1)
    }

    /// MSET (all keys written) and MSETNX (all written only if none exists): sizes are checked for
    /// every pair first, so that either every key is written or none.
    func multiSet(_ pairs: [[UInt8]], onlyIfNoneExist: Bool, index: UInt64) throws(SQLiteError) -> KVResult {
        guard pairs.count % 2 == 0 else { return .error(.invalid("wrong number of arguments for MSET")) }
        for pair in stride(from: 0, to: pairs.count, by: 2) {
            if let error = checkSizes(pairs[pair], pairs[pair + 1]) { return .error(error) }
        }
        if onlyIfNoneExist {
            for pair in stride(from: 0, to: pairs.count, by: 2) where try current(pairs[pair]) != nil { return .integer(0) }
        }
        for pair in stride(from: 0, to: pairs.count, by: 2) {
            let existing = try current(pairs[pair])
            try store(pairs[pair], pairs[pair + 1], existing: existing, modIndex: index, lease: nil)
        }
        return onlyIfNoneExist ? .integer(1) : .ok
    }

    /// FLUSHDB/FLUSHALL: every key goes, in one entry. Leases, locks, lock queues, fence registers
    /// and sessions stay: a flush must not hand a held lock to someone else or let a fencing token
    /// be reused. Refused above `flushKeysMax` keys, which would hold the Raft loop too long.
    func flush() throws(SQLiteError) -> KVResult {
        guard keyCount <= limits.flushKeysMax else {
            return .error(
                .limitExceeded("FLUSHALL refused: \(keyCount) keys, the limit is \(limits.flushKeysMax); delete them in batches"))
        }
        try db.execute("DELETE FROM kv_keys")
        keyCount = 0
        return .ok
    }
}
