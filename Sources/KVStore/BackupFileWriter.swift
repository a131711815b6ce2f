#if canImport(Glibc)
import Glibc
#endif
import RaftCore

/// Writes a backup file (`BackupFormat`) atomically: everything goes to `PATH.tmp-PID`, which is
/// fsynced and renamed over `path` (then the directory is fsynced) only once the trailer is in.
/// A failure or a crash leaves no partial file under `path`. Memory: one chunk at a time.
public final class BackupFileWriter {
    public let path: String
    public let metadata: BackupMetadata
    /// Chunks and rows written so far.
    public private(set) var chunks: UInt64 = 0
    public private(set) var rows: UInt64 = 0
    /// Bytes written so far, framing included.
    public private(set) var bytesWritten = 0

    private let temporaryPath: String
    private var descriptor: Int32
    private var digest: UInt64 = 0

    /// Creates the temporary file and writes the magic and the header.
    public init(path: String, metadata: BackupMetadata) throws(BackupFileError) {
        self.path = path
        self.metadata = metadata
        temporaryPath = "\(path).tmp-\(getpid())"
        // A backup holds every key: readable by its owner only.
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BackupFileError(path: path, .io("cannot create \(temporaryPath): \(Self.systemError())")) }
        let header = Array(metadata.text.utf8)
        do {
            try writeAll(BackupFormat.magic + BackupFormat.littleEndian32(header.count) + header)
            try writeAll(BackupFormat.littleEndian(StateSnapshotFormat.checksum(header[...])))
        } catch {
            discard()
            throw error
        }
    }

    deinit {
        if descriptor >= 0 { discard() }
    }

    /// Appends one chunk as the node sent it; a chunk that does not decode is refused (the file
    /// would not restore).
    public func append(_ chunk: [UInt8]) throws(BackupFileError) {
        let decoded: Int
        do { decoded = try StateSnapshotFormat.decode(chunk).count } catch {
            throw BackupFileError(path: path, .corrupt("chunk \(chunks) from the node does not decode: \(error)"))
        }
        guard chunk.count <= BackupFormat.chunkBytesMax else {
            throw BackupFileError(path: path, .malformed("chunk \(chunks) has \(chunk.count) bytes, more than \(BackupFormat.chunkBytesMax)"))
        }
        try writeAll(BackupFormat.littleEndian32(chunk.count))
        try writeAll(chunk)
        digest = BackupFormat.fold(digest, chunk)
        chunks += 1
        rows += UInt64(decoded)
    }

    /// Writes the trailer, fsyncs, renames into place and fsyncs the directory.
    public func finish() throws(BackupFileError) {
        var trailer = BackupFormat.littleEndian(chunks) + BackupFormat.littleEndian(rows) + BackupFormat.littleEndian(digest)
        trailer += BackupFormat.littleEndian(StateSnapshotFormat.checksum(trailer[...]))
        try writeAll(BackupFormat.littleEndian32(0) + trailer)
        guard fsync(descriptor) == 0 else {
            let reason = Self.systemError()
            discard()
            throw BackupFileError(path: path, .io("cannot fsync \(temporaryPath): \(reason)"))
        }
        close(descriptor)
        descriptor = -1
        guard rename(temporaryPath, path) == 0 else {
            let reason = Self.systemError()
            unlink(temporaryPath)
            throw BackupFileError(path: path, .io("cannot rename \(temporaryPath) into place: \(reason)"))
        }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let directoryDescriptor = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }

    /// Abandons the file: the temporary file is removed, `path` is left as it was.
    public func discard() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporaryPath)
    }

    private func writeAll(_ bytes: [UInt8]) throws(BackupFileError) {
        guard descriptor >= 0 else { throw BackupFileError(path: path, .io("backup file already closed")) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let reason = Self.systemError()
                discard()
                throw BackupFileError(path: path, .io("cannot write \(temporaryPath): \(reason)"))
            }
            written += count
        }
        bytesWritten += bytes.count
    }

    static func systemError() -> String { String(cString: strerror(errno)) }
}
