/// Client sessions for exactly-once writes (Raft thesis §6.3). A client registers (its id is the
/// index of the registering entry), then stamps each write with increasing sequence numbers. The
/// last reply per client is kept: a retry of that sequence gets it again without re-applying.
/// A session unused for `sessionTimeoutMillis` of leader-stamped time is expired, decided
/// identically on every replica from the stamps in the log.
extension KVStateMachine {
    struct Session {
        var lastSequence: UInt64
        var lastReply: [UInt8]?
        var lastActiveMillis: UInt64
    }

    /// The session, unless it does not exist or has expired as of `clockMillis`.
    func liveSession(_ client: UInt64) throws(SQLiteError) -> Session? {
        let statement = try db.statement("SELECT last_seq, last_reply, last_active_ms FROM kv_sessions WHERE client = ?")
        defer { statement.reset() }
        try statement.bind(.integer(Int64(bitPattern: client)))
        guard try statement.step() else { return nil }
        let session = Session(
            lastSequence: UInt64(statement.int64(at: 0)), lastReply: statement.isNull(at: 1) ? nil : statement.blob(at: 1),
            lastActiveMillis: UInt64(statement.int64(at: 2)))
        return isExpired(session) ? nil : session
    }

    func isExpired(_ session: Session) -> Bool {
        clockMillis > session.lastActiveMillis && clockMillis - session.lastActiveMillis > limits.sessionTimeoutMillis
    }

    func touchSession(_ client: UInt64, sequence: UInt64, reply: [UInt8]) throws(SQLiteError) {
        try db.execute(
            "UPDATE kv_sessions SET last_seq = ?, last_reply = ?, last_active_ms = ? WHERE client = ?",
            .integer(Int64(sequence)), .blob(reply), .integer(Int64(clockMillis)), .integer(Int64(client)))
    }

    /// Opens a session, first dropping expired ones and, at the limit, the least recently used.
    func registerSession(index: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        try expireSessions(events: &events)
        if sessionCount >= limits.sessionsMax,
            let oldest = try db.scalarInt64("SELECT client FROM kv_sessions ORDER BY last_active_ms, client LIMIT 1")
        {
            try db.execute("DELETE FROM kv_sessions WHERE client = ?", .integer(oldest))
            sessionCount -= db.changes
            events.append(.sessionExpired(clientID: UInt64(oldest)))
        }
        try db.execute(
            "INSERT INTO kv_sessions(client, last_seq, last_reply, last_active_ms) VALUES(?, 0, NULL, ?)",
            .integer(Int64(index)), .integer(Int64(clockMillis)))
        sessionCount += db.changes
        return .sessionRegistered(clientID: index)
    }

    /// Deletes sessions idle past the timeout. Expired rows already behave as absent, so when
    /// this runs changes nothing that any reply depends on; it only reclaims space.
    func expireSessions(events: inout [KVEvent]) throws(SQLiteError) {
        guard clockMillis > limits.sessionTimeoutMillis else { return }
        let cutoff = Int64(clockMillis - limits.sessionTimeoutMillis)
        var expired: [UInt64] = []
        try db.statement("SELECT client FROM kv_sessions WHERE last_active_ms < ? ORDER BY client").forEachRow(
            [.integer(cutoff)], mapError: { $0 }
        ) { row throws(SQLiteError) in expired.append(UInt64(row.int64(at: 0))) }
        for client in expired {
            try db.execute("DELETE FROM kv_sessions WHERE client = ?", .integer(Int64(client)))
            sessionCount -= db.changes
            events.append(.sessionExpired(clientID: client))
        }
    }
}
