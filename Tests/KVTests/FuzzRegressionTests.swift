import Foundation
import KVStore
import RaftCore
import Testing

/// Inputs the libFuzzer targets found to crash (docs/FUZZING.md); each is also kept in
/// Fuzz/corpus so the fuzzers run it on every start.
@Suite struct FuzzRegressionTests {
    static func littleEndian(_ value: UInt64, bytes: Int = 8) -> [UInt8] {
        (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// A snapshot chunk whose header claims 2^32 - 1 rows but holds none, with a right checksum.
    static let hugeCountChunk: [UInt8] = {
        let body: [UInt8] = [StateSnapshotFormat.version, 0xFF, 0xFF, 0xFF, 0xFF]
        return body + littleEndian(StateSnapshotFormat.checksum(body[...]))
    }()

    @Test("a backup chunk claiming more rows than it has bytes is refused, not reserved (fuzz-backup crash)")
    func chunkRowCountBeyondItsBytes() throws {
        // Fuzz/corpus/fuzz-backup/regression-row-count-overflow: decoding reserved room for the
        // claimed count (60 GB for 2^32 - 1 rows) before reading any row, and the allocation trapped.
        let directory = NSTemporaryDirectory() + "kvd-fuzz-regression-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metadata = BackupMetadata(
            clusterID: "demo", sourceNode: 1, appliedIndex: 4, term: 2, membership: ClusterMembership(voters: [1, 2, 3]),
            createdMillis: 1_700_000_000_000, schemaVersion: BackupMetadata.currentSchemaVersion)
        let header = Array(metadata.text.utf8)
        var file = BackupFormat.magic + Self.littleEndian(UInt64(header.count), bytes: 4) + header
        file += Self.littleEndian(StateSnapshotFormat.checksum(header[...]))
        file += Self.littleEndian(UInt64(Self.hugeCountChunk.count), bytes: 4) + Self.hugeCountChunk
        let path = "\(directory)/forged.backup"
        try Data(file).write(to: URL(fileURLWithPath: path))

        let reader = try BackupFileReader(path: path)
        #expect {
            try reader.verifyToEnd()
        } throws: { error in
            guard let error = error as? BackupFileError, case .corrupt(let detail) = error.reason else { return false }
            return detail.contains("row count 4294967295 cannot fit in 0 bytes")
        }
        // `kvctl snapshot save` checks each chunk a node sends the same way.
        let writer = try BackupFileWriter(path: "\(directory)/saved.backup", metadata: metadata)
        #expect(throws: BackupFileError.self) { try writer.append(Self.hugeCountChunk) }
    }
}
