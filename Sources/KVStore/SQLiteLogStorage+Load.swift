public import RaftCore

extension SQLiteLogStorage {
    /// Reads back the hard state, the snapshot and every entry after it, checking as it goes: a
    /// row of the wrong shape, an undecodable payload or a gap in the log is `.corrupt` naming the
    /// file and the row. It reads in its own transaction, so it must not be called while one is
    /// open on the connection.
    public func load() throws(StorageError) -> PersistentState {
        // One read transaction, so the three reads see the same commit.
        try sql { () throws(SQLiteError) in try db.execute("BEGIN") }
        defer { try? db.execute("COMMIT") }
        let hardState = try loadHardState()
        let snapshot = try loadSnapshot()
        let entries = try loadEntries(after: snapshot?.metadata.lastIncludedIndex ?? .zero)
        return PersistentState(hardState: hardState, snapshot: snapshot, entries: entries)
    }

    private func loadHardState() throws(StorageError) -> HardState {
        var hardState = HardState()
        let statement = try sql { () throws(SQLiteError) in
            try db.statement("SELECT current_term, voted_for, commit_index FROM raft_hard_state WHERE id = 0")
        }
        try statement.forEachRow(mapError: { $0.storageError }) { (row) throws(StorageError) in
            let term = try integer(row, 0, "hard state current_term")
            let vote: NodeID? = row.isNull(at: 1) ? nil : NodeID(UInt64(bitPattern: try integer(row, 1, "hard state voted_for")))
            let commit = try integer(row, 2, "hard state commit_index")
            hardState = HardState(
                currentTerm: Term(UInt64(bitPattern: term)), votedFor: vote, commitIndex: LogIndex(UInt64(bitPattern: commit)))
        }
        return hardState
    }

    private func loadSnapshot() throws(StorageError) -> Snapshot? {
        var snapshot: Snapshot?
        let statement = try sql { () throws(SQLiteError) in
            try db.statement("SELECT last_index, last_term, membership, data FROM raft_snapshot WHERE id = 0")
        }
        try statement.forEachRow(mapError: { $0.storageError }) { (row) throws(StorageError) in
            let index = LogIndex(UInt64(bitPattern: try integer(row, 0, "snapshot last_index")))
            let term = Term(UInt64(bitPattern: try integer(row, 1, "snapshot last_term")))
            let membership = try RaftCodec.decodeMembership(
                try blob(row, 2, "snapshot membership"), context: "snapshot at \(index) in \(path)")
            let metadata = SnapshotMetadata(lastIncludedIndex: index, lastIncludedTerm: term, membership: membership)
            snapshot = Snapshot(metadata: metadata, data: try blob(row, 3, "snapshot data"))
        }
        return snapshot
    }

    /// The entries in index order; the first must directly follow `snapshotIndex` (or be 1).
    private func loadEntries(after snapshotIndex: LogIndex) throws(StorageError) -> [Entry] {
        var entries: [Entry] = []
        var expected = snapshotIndex.next
        let statement = try sql { () throws(SQLiteError) in
            try db.statement("SELECT idx, term, kind, payload FROM raft_entries ORDER BY idx")
        }
        try statement.forEachRow(mapError: { $0.storageError }) { (row) throws(StorageError) in
            let index = LogIndex(UInt64(bitPattern: try integer(row, 0, "entry index")))
            guard index == expected else {
                throw .corrupt(
                    "\(path): the Raft log has entry \(index) where entry \(expected) should be "
                        + "(snapshot at \(snapshotIndex)): a gap or an entry the snapshot covers")
            }
            let context = "entry \(index) in \(path)"
            let term = Term(UInt64(bitPattern: try integer(row, 1, "\(context): term")))
            let kind = try integer(row, 2, "\(context): kind")
            let payload = try RaftCodec.decodePayload(kind: kind, bytes: try blob(row, 3, "\(context): payload"), context: context)
            entries.append(Entry(term: term, index: index, payload: payload))
            expected = index.next
        }
        return entries
    }

    private func integer(_ row: SQLiteStatement, _ column: Int32, _ what: String) throws(StorageError) -> Int64 {
        guard row.columnType(at: column) == .integer else {
            throw .corrupt("\(path): \(what) is \(row.columnType(at: column)), not an integer")
        }
        return row.int64(at: column)
    }

    private func blob(_ row: SQLiteStatement, _ column: Int32, _ what: String) throws(StorageError) -> [UInt8] {
        guard row.columnType(at: column) == .blob else {
            throw .corrupt("\(path): \(what) is \(row.columnType(at: column)), not a blob")
        }
        return row.blob(at: column)
    }
}
