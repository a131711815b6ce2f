public import RaftCore

/// The whole state as one byte array. Not how snapshots travel any more (the state database is
/// the snapshot: see `StateSnapshotReader`); kept to compare replicas byte for byte in tests, and
/// to restore a log written by an older kvd, which kept the state in its snapshot row. Restoring
/// replaces the whole state in one transaction, so it gives exactly the state that replaying the
/// log up to its index gives.
extension KVStateMachine {
    static let snapshotFormatVersion: UInt8 = 1

    /// Serialises the state as of `appliedIndex` (read inside one transaction, so it is consistent).
    public func snapshot() throws(StorageError) -> [UInt8] {
        var writer = BinaryWriter(capacity: 4096)
        writer.write(Self.snapshotFormatVersion)
        writer.write(appliedIndex.rawValue)
        do {
            try db.transaction(mapError: { $0 }) { () throws(SQLiteError) in
                for table in KVSchema.snapshotTables {
                    var rows: [[SQLiteValue]] = []
                    let columns = table.columns.joined(separator: ", ")
                    try db.prepare("SELECT \(columns) FROM \(table.name) ORDER BY 1").forEachRow(
                        [], mapError: { $0 }
                    ) { row throws(SQLiteError) in
                        rows.append((0..<Int32(table.columns.count)).map { row.value(at: $0) })
                    }
                    writer.write(UInt64(rows.count))
                    for row in rows { for value in row { StateSnapshotFormat.write(value, into: &writer) } }
                }
            }
        } catch { throw error.storageError }
        return writer.bytes
    }

    /// Replaces the whole state by `data`, which must describe the state at `metadata`'s index.
    public func restore(_ data: [UInt8], metadata: SnapshotMetadata) throws(StorageError) {
        var reader = BinaryReader(data)
        let tables: [[[SQLiteValue]]]
        do {
            let version = try reader.readByte()
            guard version == Self.snapshotFormatVersion else {
                throw DecodingError(offset: 0, reason: "unknown snapshot format \(version)")
            }
            let index = try reader.readUInt64()
            guard index == metadata.lastIncludedIndex.rawValue else {
                throw DecodingError(offset: 1, reason: "snapshot holds index \(index), metadata says \(metadata.lastIncludedIndex)")
            }
            tables = try KVSchema.snapshotTables.map { table throws(DecodingError) in
                try Self.readRows(&reader, columns: table.columns.count)
            }
            try reader.finish()
        } catch {
            throw .corrupt("\(db.path): snapshot at \(metadata.lastIncludedIndex) does not decode: \(error)")
        }
        do {
            try db.transaction(mapError: { $0 }) { () throws(SQLiteError) in
                for (table, rows) in zip(KVSchema.snapshotTables, tables) {
                    try db.execute("DELETE FROM \(table.name)")
                    let placeholders = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
                    let insert = try db.prepare(
                        "INSERT INTO \(table.name)(\(table.columns.joined(separator: ", "))) VALUES(\(placeholders))")
                    for row in rows {
                        insert.reset()
                        try insert.run(row)
                    }
                }
            }
        } catch { throw error.storageError }
        try loadMeta()
    }

    static func readRows(_ reader: inout BinaryReader, columns: Int) throws(DecodingError) -> [[SQLiteValue]] {
        let count = try reader.readUInt64()
        var rows: [[SQLiteValue]] = []
        var read: UInt64 = 0
        while read < count {
            var row: [SQLiteValue] = []
            for _ in 0..<columns { row.append(try StateSnapshotFormat.readValue(&reader)) }
            rows.append(row)
            read += 1
        }
        return rows
    }
}
