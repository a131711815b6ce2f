import Foundation
import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// Backup files (`kvctl snapshot save`), their checks (`kvctl snapshot status`) and restoring a
/// new cluster's node from one (`kvd --restore-from`).
@Suite struct BackupTests {
    /// A state at `directory/source.sqlite` with keys, a lease holding a key and a lock (token
    /// `lockToken`), a waiter, a fence and a session; returns the machine and the lock's token.
    static func sourceState(_ directory: String) throws -> (machine: KVStateMachine, lockToken: UInt64) {
        let machine = try StateSnapshotTests.machine(at: "\(directory)/source.sqlite")
        var index: UInt64 = 0
        func apply(_ operation: KVOperation, session: SessionStamp? = nil) throws -> KVResult {
            index += 1
            let command = KVCommand(session: session, timestampMillis: 1_000_000, operation: operation)
            let applied = try machine.apply([Entry(term: 4, index: LogIndex(index), payload: .command(command.encoded()))])
            return try #require(applied.first).result
        }
        for number in 0..<300 {
            _ = try apply(.put(key: bytes("key-\(number)"), value: bytes("value-\(number)"), condition: .always, lease: nil, fence: nil))
        }
        guard case .leaseGranted(let lease, _) = try apply(.leaseGrant(ttlMillis: 60_000)),
            case .leaseGranted(let other, _) = try apply(.leaseGrant(ttlMillis: 60_000))
        else { throw TestError("lease grant failed") }
        _ = try apply(.put(key: bytes("leased"), value: bytes("v"), condition: .always, lease: lease, fence: nil))
        guard case .lockGranted(let token) = try apply(.lockAcquire(name: bytes("job"), leaseID: lease, wait: false)) else {
            throw TestError("lock grant failed")
        }
        _ = try apply(.lockAcquire(name: bytes("job"), leaseID: other, wait: true))
        _ = try apply(.fence(name: bytes("job"), token: token))
        _ = try apply(.sessionRegister)
        for number in 0..<20 { _ = try apply(.put(key: bytes("late-\(number)"), value: bytes("x"), condition: .always, lease: nil, fence: nil)) }
        return (machine, token)
    }

    static let metadata = BackupMetadata(
        clusterID: "old", sourceNode: 2, appliedIndex: 0, term: 4, membership: ClusterMembership(voters: [1, 2, 3]),
        createdMillis: 1_700_000_000_000, schemaVersion: BackupMetadata.currentSchemaVersion)

    /// Streams the state at `source` into a backup file at `path`, in small chunks.
    @discardableResult
    static func save(_ source: String, to path: String, chunkBytes: Int = 700) throws -> BackupMetadata {
        let reader = try StateSnapshotReader(path: source)
        var metadata = Self.metadata
        metadata.appliedIndex = reader.appliedIndex
        let writer = try BackupFileWriter(path: path, metadata: metadata)
        while !reader.isFinished { try writer.append(try reader.nextChunk(maxBytes: chunkBytes).bytes) }
        try writer.finish()
        return metadata
    }

    static func readAll(_ path: String) throws(BackupFileError) -> BackupFileReader {
        let reader = try BackupFileReader(path: path)
        try reader.verifyToEnd()
        return reader
    }

    static func config(_ directory: String, clusterID: String) throws -> String {
        let path = "\(directory)/new-\(clusterID).conf"
        var text = "cluster-id \(clusterID)\n"
        for id in 1...3 { text += "node \(id) peer=127.0.0.1:\(17_000 + id) client=127.0.0.1:\(17_100 + id)\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a backup file round-trips: metadata, every row, counts per table")
    func roundTrip() throws {
        try StateSnapshotTests.withDirectory { directory in
            let (machine, _) = try Self.sourceState(directory)
            let saved = try Self.save("\(directory)/source.sqlite", to: "\(directory)/backup.kvd")
            let reader = try Self.readAll("\(directory)/backup.kvd")
            #expect(reader.metadata == saved)
            #expect(reader.metadata.appliedIndex == machine.appliedIndex)
            #expect(reader.chunks > 5, "small chunks make many")
            #expect(reader.rowsPerTable["kv_keys"] == 321)
            #expect(reader.rowsPerTable["kv_leases"] == 2)
            #expect(reader.rowsPerTable["kv_locks"] == 1)
            #expect(reader.rowsPerTable["kv_sessions"] == 1)
            #expect(access("\(directory)/backup.kvd.tmp-\(getpid())", F_OK) != 0, "no temporary file is left")
        }
    }

    @Test("a truncated, damaged or padded backup is refused with the reason")
    func damagedFilesAreRefused() throws {
        try StateSnapshotTests.withDirectory { directory in
            _ = try Self.sourceState(directory)
            try Self.save("\(directory)/source.sqlite", to: "\(directory)/backup.kvd")
            let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(directory)/backup.kvd")))
            func verdict(_ bytes: [UInt8]) throws -> BackupFileError.Reason? {
                try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/bad.kvd"))
                do {
                    _ = try Self.readAll("\(directory)/bad.kvd")
                    return nil
                } catch {
                    return error.reason
                }
            }
            #expect(try verdict(good) == nil)
            for cut in [3, 12, 100, good.count / 2, good.count - 36, good.count - 1] {
                guard case .truncated = try verdict(Array(good.prefix(cut))) else {
                    Issue.record("cut at \(cut) of \(good.count) is not reported as truncated: \(String(describing: try verdict(Array(good.prefix(cut)))))")
                    continue
                }
            }
            for position in [good.count / 3, good.count / 2, good.count - 5] {
                var flipped = good
                flipped[position] ^= 0x40
                guard case .corrupt = try verdict(flipped) else {
                    Issue.record("a flipped byte at \(position) is not reported as corrupt")
                    continue
                }
            }
            guard case .corrupt = try verdict(good + [0]) else { Issue.record("bytes after the trailer are accepted"); return }
            guard case .malformed = try verdict([0, 1, 2] + good.dropFirst(3)) else { Issue.record("a bad magic is accepted"); return }
        }
    }
}

struct TestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
