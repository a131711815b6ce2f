#if canImport(Glibc)
import Glibc
#endif
import RaftCore

/// Reads a backup file (`BackupFormat`) chunk by chunk, checking everything on the way: the
/// magic, the header's checksum and fields, each chunk's checksum, version and rows, and at the
/// end the trailer's counts and digest and that nothing follows it. Memory: one chunk at a time.
public final class BackupFileReader {
    public let path: String
    public let metadata: BackupMetadata
    /// Chunks and rows read so far.
    public private(set) var chunks: UInt64 = 0
    public private(set) var rows: UInt64 = 0
    /// Rows read so far per state table (`kv_keys`, `kv_leases`, ...).
    public private(set) var rowsPerTable: [String: Int] = [:]
    /// Bytes of the file, once read to its end.
    public private(set) var bytesRead = 0
    /// True once the trailer was read and checked.
    public private(set) var isFinished = false

    private let file: UnsafeMutablePointer<FILE>
    private var digest: UInt64 = 0

    /// Opens `path` and checks its magic and header.
    public init(path: String) throws(BackupFileError) {
        self.path = path
        guard let file = fopen(path, "rb") else {
            throw BackupFileError(path: path, .io("cannot open: \(String(cString: strerror(errno)))"))
        }
        self.file = file
        do throws(BackupFileError) {
            let magic = try Self.read(file, BackupFormat.magic.count, path, "the magic")
            guard magic == BackupFormat.magic else { throw BackupFileError(path: path, .malformed("not a kvd backup file (bad magic)")) }
            let length = BackupFormat.uint32(try Self.read(file, 4, path, "the header length")[...])
            guard length <= BackupFormat.headerBytesMax else {
                throw BackupFileError(path: path, .corrupt("header length \(length) exceeds \(BackupFormat.headerBytesMax)"))
            }
            let header = try Self.read(file, length, path, "the header")
            let stored = BackupFormat.uint64(try Self.read(file, 8, path, "the header checksum")[...])
            guard stored == StateSnapshotFormat.checksum(header[...]) else {
                throw BackupFileError(path: path, .corrupt("header checksum does not match"))
            }
            do { metadata = try BackupMetadata.parse(String(decoding: header, as: UTF8.self)) } catch {
                throw BackupFileError(path: path, error)
            }
            bytesRead = BackupFormat.magic.count + 4 + length + 8
        } catch {
            fclose(file)
            throw error
        }
    }

    deinit { fclose(file) }

    /// The next chunk (checked), or nil after the last one once the trailer is checked.
    public func nextChunk() throws(BackupFileError) -> [UInt8]? {
        guard !isFinished else { return nil }
        let length = BackupFormat.uint32(try Self.read(file, 4, path, "the frame after chunk \(chunks)")[...])
        bytesRead += 4
        guard length > 0 else {
            try readTrailer()
            return nil
        }
        guard length <= BackupFormat.chunkBytesMax else {
            throw BackupFileError(path: path, .corrupt("chunk \(chunks) claims \(length) bytes, more than \(BackupFormat.chunkBytesMax)"))
        }
        let chunk = try Self.read(file, length, path, "chunk \(chunks)")
        bytesRead += length
        let decoded: [(table: Int, row: [SQLiteValue])]
        do { decoded = try StateSnapshotFormat.decode(chunk) } catch {
            throw BackupFileError(path: path, .corrupt("chunk \(chunks) at byte \(bytesRead - length): \(error)"))
        }
        for (table, _) in decoded { rowsPerTable[KVSchema.snapshotTables[table].name, default: 0] += 1 }
        digest = BackupFormat.fold(digest, chunk)
        chunks += 1
        rows += UInt64(decoded.count)
        return chunk
    }

    /// Reads every remaining chunk, checking it; returns the totals.
    public func verifyToEnd() throws(BackupFileError) {
        while try nextChunk() != nil {}
    }

    private func readTrailer() throws(BackupFileError) {
        let trailer = try Self.read(file, 32, path, "the trailer")
        bytesRead += 32
        guard BackupFormat.uint64(trailer[24...]) == StateSnapshotFormat.checksum(trailer[..<24]) else {
            throw BackupFileError(path: path, .corrupt("trailer checksum does not match"))
        }
        let (storedChunks, storedRows, storedDigest) = (
            BackupFormat.uint64(trailer[0...]), BackupFormat.uint64(trailer[8...]), BackupFormat.uint64(trailer[16...])
        )
        guard storedChunks == chunks, storedRows == rows else {
            throw BackupFileError(
                path: path, .corrupt("the trailer counts \(storedChunks) chunks and \(storedRows) rows, the file holds \(chunks) and \(rows)"))
        }
        guard storedDigest == digest else { throw BackupFileError(path: path, .corrupt("the chunks' digest does not match the trailer")) }
        guard fgetc(file) == EOF else { throw BackupFileError(path: path, .corrupt("bytes follow the trailer")) }
        isFinished = true
    }

    /// Exactly `count` bytes, or `.truncated` naming what was being read.
    private static func read(_ file: UnsafeMutablePointer<FILE>, _ count: Int, _ path: String, _ what: String) throws(BackupFileError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = count == 0 ? 0 : bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, count, file) }
        guard got == count else {
            if ferror(file) != 0 { throw BackupFileError(path: path, .io("cannot read \(what): \(String(cString: strerror(errno)))")) }
            throw BackupFileError(path: path, .truncated("the file ends inside \(what)"))
        }
        return bytes
    }
}
