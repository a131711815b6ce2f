/// The byte stream a leader sends a follower that needs a snapshot: the rows of every state
/// table, read inside one SQLite read transaction, so they are the state as of one applied index.
///
/// The stream is a sequence of chunks, each decodable on its own, so that a follower writes each
/// chunk as it arrives and never holds the whole state:
/// ```
/// u8  format version (1)
/// u32 row count, little-endian
/// rows: u8 table number (position in `KVSchema.snapshotTables`), then each column's value
///       (u8 tag: 0 null, 1 integer + i64, 2 blob + u64 length + bytes, 3 text + u64 length + bytes)
/// u64 checksum of every byte before it (`StateSnapshotFormat.checksum`)
/// ```
/// A row never spans two chunks. `kv_meta` travels like any other table, so the received state
/// carries its own applied index, which the follower checks against the snapshot's metadata.
public enum StateSnapshotFormat {
    /// The chunk format this code writes and reads.
    public static let version: UInt8 = 1
    /// Bytes of a chunk around its rows: version, row count, checksum.
    public static let chunkOverheadBytes = 1 + 4 + 8

    /// A 64-bit checksum (FNV-1a over 8-byte words, then mixed): detects damage in transit or at
    /// rest; it is not a cryptographic hash.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        var index = bytes.startIndex
        while index + 8 <= bytes.endIndex {
            var word: UInt64 = 0
            for shift in 0..<8 { word |= UInt64(bytes[index + shift]) << (8 * UInt64(shift)) }
            hash = (hash ^ word) &* 0x0000_0100_0000_01B3
            hash ^= hash >> 29
            index += 8
        }
        while index < bytes.endIndex {
            hash = (hash ^ UInt64(bytes[index])) &* 0x0000_0100_0000_01B3
            index += 1
        }
        hash ^= UInt64(bytes.count)
        hash = (hash ^ (hash >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        return hash ^ (hash >> 33)
    }

    /// Bytes `value` takes in a chunk.
    static func encodedSize(_ value: SQLiteValue) -> Int {
        switch value {
        case .null: return 1
        case .integer: return 9
        case .blob(let bytes): return 9 + bytes.count
        case .text(let text): return 9 + text.utf8.count
        }
    }

    static func write(_ value: SQLiteValue, into writer: inout BinaryWriter) {
        switch value {
        case .null: writer.write(UInt8(0))
        case .integer(let number): writer.write(UInt8(1)); writer.write(number)
        case .blob(let bytes): writer.write(UInt8(2)); writer.write(bytes)
        case .text(let text): writer.write(UInt8(3)); writer.write(Array(text.utf8))
        }
    }

    static func readValue(_ reader: inout BinaryReader) throws(DecodingError) -> SQLiteValue {
        switch try reader.readByte() {
        case 0: return .null
        case 1: return .integer(try reader.readInt64())
        case 2: return .blob(try reader.readBytes())
        case 3: return .text(String(decoding: try reader.readBytes(), as: UTF8.self))
        case let tag: throw DecodingError(offset: reader.offset - 1, reason: "bad value tag \(tag)")
        }
    }

    /// Decodes one chunk into (table number, row) pairs, checking its version and checksum.
    static func decode(_ chunk: [UInt8]) throws(DecodingError) -> [(table: Int, row: [SQLiteValue])] {
        guard chunk.count >= chunkOverheadBytes else {
            throw DecodingError(offset: 0, reason: "chunk of \(chunk.count) bytes is shorter than its header")
        }
        let bodyEnd = chunk.count - 8
        var stored: UInt64 = 0
        for shift in 0..<8 { stored |= UInt64(chunk[bodyEnd + shift]) << (8 * UInt64(shift)) }
        guard stored == checksum(chunk[..<bodyEnd]) else {
            throw DecodingError(offset: bodyEnd, reason: "chunk checksum does not match (damaged in transit or on disk)")
        }
        guard chunk[0] == version else { throw DecodingError(offset: 0, reason: "unknown snapshot chunk format \(chunk[0])") }
        var count = 0
        for shift in 0..<4 { count |= Int(chunk[1 + shift]) << (8 * shift) }
        // Every row takes at least its table byte: a larger count is damage, refused before
        // `reserveCapacity` would ask for up to 2^32 rows (found by fuzzing, docs/FUZZING.md).
        guard count <= bodyEnd - 5 else {
            throw DecodingError(offset: 1, reason: "row count \(count) cannot fit in \(bodyEnd - 5) bytes")
        }
        var reader = BinaryReader(Array(chunk[5..<bodyEnd]))
        var rows: [(table: Int, row: [SQLiteValue])] = []
        rows.reserveCapacity(count)
        for _ in 0..<count {
            let table = Int(try reader.readByte())
            guard table < KVSchema.snapshotTables.count else {
                throw DecodingError(offset: reader.offset - 1, reason: "unknown table number \(table)")
            }
            var row: [SQLiteValue] = []
            for _ in 0..<KVSchema.snapshotTables[table].columns.count { row.append(try readValue(&reader)) }
            rows.append((table, row))
        }
        try reader.finish()
        return rows
    }

    /// Wraps encoded rows into a chunk: header, rows, checksum.
    static func seal(rows: Int, body: [UInt8]) -> [UInt8] {
        var chunk: [UInt8] = [version]
        chunk.reserveCapacity(body.count + chunkOverheadBytes)
        for shift in 0..<4 { chunk.append(UInt8(truncatingIfNeeded: rows >> (8 * shift))) }
        chunk += body
        let sum = checksum(chunk[...])
        for shift in 0..<8 { chunk.append(UInt8(truncatingIfNeeded: sum >> (8 * UInt64(shift)))) }
        return chunk
    }
}
