#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import KVStore
import RaftCore

/// Fuzzes the backup file reader: `BackupFileReader(path:)` (magic, header and its checksum,
/// `BackupMetadata.parse`) and `verifyToEnd()` (chunk framing, `StateSnapshotFormat` chunk
/// decoding, trailer). The input is written to a file in /dev/shm.
///
/// An odd selector byte builds the file from the input with every checksum, the trailer's counts
/// and its digest made right, so the fuzzer reaches the header text and the chunks' rows instead
/// of stopping at a checksum: u16 header length, header, then (u16 length, chunk without its
/// checksum)... up to a zero length, then bytes to append after the trailer.
/// An even selector writes the stream as the file, unchanged.

let path = "/dev/shm/kvd-fuzz-backup-\(getpid())"
let magic = Array("KVDBAK1\n".utf8)

func littleEndian(_ value: UInt64, bytes: Int = 8) -> [UInt8] {
    (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

func checksummed(_ bytes: [UInt8]) -> [UInt8] {
    bytes + littleEndian(StateSnapshotFormat.checksum(bytes[...]))
}

/// The structured reading of the stream described above.
func buildFile(_ stream: [UInt8]) -> [UInt8] {
    var index = 0
    func take(_ count: Int) -> [UInt8] {
        let end = min(stream.count, index + count)
        defer { index = end }
        return Array(stream[index..<end])
    }
    func length() -> Int {
        let bytes = take(2)
        return bytes.count == 2 ? Int(bytes[0]) | Int(bytes[1]) << 8 : 0
    }
    let header = take(length())
    var file = magic + littleEndian(UInt64(header.count), bytes: 4) + checksummed(header)
    var chunks: UInt64 = 0, rows: UInt64 = 0, digest: UInt64 = 0
    while true {
        let count = length()
        guard count > 0 else { break }
        let chunk = checksummed(take(count))
        if chunk.count >= 13 { rows &+= UInt64(chunk[1]) | UInt64(chunk[2]) << 8 | UInt64(chunk[3]) << 16 | UInt64(chunk[4]) << 24 }
        digest = StateSnapshotFormat.checksum((littleEndian(digest) + chunk.suffix(8))[...])
        chunks += 1
        file += littleEndian(UInt64(chunk.count), bytes: 4) + chunk
    }
    file += littleEndian(0, bytes: 4) + checksummed(littleEndian(chunks) + littleEndian(rows) + littleEndian(digest))
    return file + stream[index...]
}

func write(_ bytes: [UInt8], to path: String) {
    guard let file = fopen(path, "wb") else { fatalError("cannot create \(path)") }
    if !bytes.isEmpty { _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, file) } }
    fclose(file)
}

func read(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let got = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, file) }
        if got == 0 { return bytes }
        bytes += buffer[..<got]
    }
}

/// A real backup: a small state written by `BackupFileWriter`, in chunks of about `chunkBytes`.
func realBackup(chunkBytes: Int) throws -> [UInt8] {
    let directory = "/dev/shm/kvd-fuzz-seeds-\(getpid())"
    mkdir(directory, 0o700)
    defer {
        for name in ["state.sqlite", "state.sqlite-wal", "state.sqlite-shm", "backup"] { unlink("\(directory)/\(name)") }
        rmdir(directory)
    }
    var options = SQLiteConnection.Options()
    options.synchronous = .normal
    let machine = try KVStateMachine(database: try SQLiteConnection(path: "\(directory)/state.sqlite", options: options))
    let operations: [KVOperation] = [
        .put(key: Array("alpha".utf8), value: Array("1".utf8), condition: .always, lease: nil, fence: nil),
        .put(key: Array("beta".utf8), value: [0, 255, 7], condition: .always, lease: nil, fence: nil),
        .leaseGrant(ttlMillis: 60_000), .sessionRegister,
    ]
    for (offset, operation) in operations.enumerated() {
        let command = KVCommand(timestampMillis: 1_000_000, operation: operation)
        _ = try machine.apply([Entry(term: 2, index: LogIndex(UInt64(offset + 1)), payload: .command(command.encoded()))])
    }
    let reader = try StateSnapshotReader(path: "\(directory)/state.sqlite")
    let metadata = BackupMetadata(
        clusterID: "demo", sourceNode: 1, appliedIndex: reader.appliedIndex, term: 2,
        membership: ClusterMembership(voters: [1, 2, 3], learners: [4]), createdMillis: 1_700_000_000_000,
        schemaVersion: BackupMetadata.currentSchemaVersion)
    let writer = try BackupFileWriter(path: "\(directory)/backup", metadata: metadata)
    while !reader.isFinished { try writer.append(try reader.nextChunk(maxBytes: chunkBytes).bytes) }
    try writer.finish()
    return read("\(directory)/backup")
}

/// A backup file in the structured form: its header and chunks without their checksums.
func structured(_ file: [UInt8]) -> [UInt8] {
    func uint32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(file[at + $1]) << (8 * $1) } }
    func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8)] }
    var index = magic.count
    let headerLength = uint32(index)
    var out = u16(headerLength) + file[(index + 4)..<(index + 4 + headerLength)]
    index += 4 + headerLength + 8
    while true {
        let length = uint32(index)
        index += 4
        guard length > 0 else { break }
        out += u16(length - 8) + file[index..<(index + length - 8)]
        index += length
    }
    return out + u16(0)
}

/// Seeds for Fuzz/corpus, made with the real encoders (scripts/fuzz.sh --write-seeds).
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    let small = try realBackup(chunkBytes: 120), large = try realBackup(chunkBytes: 4096)
    return [
        ("raw-small-chunks", [0] + small), ("raw-one-chunk", [2] + large),
        ("structured-small-chunks", [1] + structured(small)), ("structured-one-chunk", [3] + structured(large)),
    ]
}

/// One input (libFuzzer's `LLVMFuzzerTestOneInput`).
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    write(input.selector & 1 == 1 ? buildFile(input.stream) : input.stream, to: path)
    if let reader = try? BackupFileReader(path: path) {
        do {
            try reader.verifyToEnd()
            expect(reader.isFinished, "verifyToEnd returned before the trailer")
        } catch {}
    }
    return 0
}
