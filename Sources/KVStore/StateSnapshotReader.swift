public import RaftCore

/// Reads the state database as one consistent snapshot, chunk by chunk, for a follower that
/// needs it (the leader's side of InstallSnapshot). It holds its own connection with one read
/// transaction open from creation to the last chunk: SQLite's WAL mode lets the state machine
/// keep committing meanwhile, and this reader keeps seeing the state as of `appliedIndex`.
///
/// Cost: each `nextChunk` reads about `maxBytes` of rows, however large the state; nothing but
/// the current chunk is held in memory. While the read transaction is open, checkpoints cannot
/// move the WAL past it, so the WAL grows with the writes made during a transfer.
public final class StateSnapshotReader {
    /// The applied index of the state being read (its `kv_meta` row).
    public let appliedIndex: LogIndex
    /// Bytes of chunks produced so far.
    public private(set) var bytesProduced = 0
    /// Rows read so far.
    public private(set) var rowsProduced = 0
    /// True once the last chunk has been produced (the read transaction is then closed).
    public private(set) var isFinished = false

    private let db: SQLiteConnection
    private var table = 0
    private var statement: SQLiteStatement?
    /// A row read that did not fit in the previous chunk.
    private var pendingRow: (table: Int, values: [SQLiteValue])?

    /// Opens `path` (an existing state database) and starts the read transaction.
    public init(path: String) throws(StorageError) {
        var options = SQLiteConnection.Options()
        options.create = false
        options.synchronous = .normal
        do {
            db = try SQLiteConnection(path: path, options: options)
            try db.execute("BEGIN")
            appliedIndex = LogIndex(UInt64(bitPattern: try db.scalarInt64("SELECT value FROM kv_meta WHERE name = 'applied_index'") ?? 0))
        } catch {
            throw error.storageError
        }
    }

    deinit {
        statement = nil
        if !isFinished { try? db.execute("COMMIT") }
    }

    /// The next chunk of at most `maxBytes` (more only when a single row is larger), and whether
    /// it is the last one.
    public func nextChunk(maxBytes: Int) throws(StorageError) -> (bytes: [UInt8], done: Bool) {
        precondition(!isFinished, "nextChunk after the last chunk")
        let budget = max(1, maxBytes - StateSnapshotFormat.chunkOverheadBytes)
        var body = BinaryWriter(capacity: min(budget, 1 << 20))
        var rows = 0
        do {
            while true {
                if pendingRow == nil { pendingRow = try readRow() }
                guard let row = pendingRow else {
                    statement = nil
                    try db.execute("COMMIT")
                    isFinished = true
                    break
                }
                let size = 1 + row.values.reduce(0) { $0 + StateSnapshotFormat.encodedSize($1) }
                if rows > 0 && body.bytes.count + size > budget { break }
                body.write(UInt8(row.table))
                for value in row.values { StateSnapshotFormat.write(value, into: &body) }
                rows += 1
                pendingRow = nil
            }
        } catch {
            throw error.storageError
        }
        let chunk = StateSnapshotFormat.seal(rows: rows, body: body.bytes)
        bytesProduced += chunk.count
        rowsProduced += rows
        return (chunk, isFinished)
    }

    /// The next row of the current table, moving through the tables in order; nil after the last.
    private func readRow() throws(SQLiteError) -> (table: Int, values: [SQLiteValue])? {
        while table < KVSchema.snapshotTables.count {
            let (name, columns) = KVSchema.snapshotTables[table]
            if statement == nil { statement = try db.prepare("SELECT \(columns.joined(separator: ", ")) FROM \(name)") }
            guard let current = statement else { continue }
            if try current.step() {
                return (table, (0..<Int32(columns.count)).map { current.value(at: $0) })
            }
            statement = nil
            table += 1
        }
        return nil
    }
}
