import Foundation
import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// The state database as the snapshot: a leader streams it in chunks from a read transaction, a
/// follower rebuilds it chunk by chunk in a new file and swaps it in; a restart completes an
/// install a crash interrupted.
@Suite struct StateSnapshotTests {
    /// A fresh directory, removed when `body` returns.
    static func withDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-snap-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    static func machine(at path: String) throws -> KVStateMachine {
        var options = SQLiteConnection.Options()
        options.synchronous = .normal
        return try KVStateMachine(database: try SQLiteConnection(path: path, options: options))
    }

    static let membership = ClusterMembership(voters: [1, 2, 3])

    static func metadata(_ index: LogIndex, term: UInt64 = 3) -> SnapshotMetadata {
        SnapshotMetadata(lastIncludedIndex: index, lastIncludedTerm: Term(term), membership: membership)
    }

    /// Streams `source`'s state into a new file at `path` in chunks of at most `chunkBytes`.
    static func transfer(from source: String, to path: String, chunkBytes: Int) throws -> (chunks: Int, metadata: SnapshotMetadata) {
        let reader = try StateSnapshotReader(path: source)
        let metadata = Self.metadata(reader.appliedIndex)
        let writer = try StateSnapshotWriter(path: path, metadata: metadata)
        var chunks = 0
        while !reader.isFinished {
            let (bytes, _) = try reader.nextChunk(maxBytes: chunkBytes)
            #expect(bytes.count <= max(chunkBytes, 2_000), "a chunk exceeds its budget by at most one row")
            try writer.write(bytes)
            chunks += 1
        }
        try writer.finish()
        return (chunks, metadata)
    }

    /// The rebuilt database holds exactly the source's state (every replicated table, byte for
    /// byte), records the snapshot it came from, and was sent in many small chunks.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func streamedStateEqualsSource(seed: UInt64) throws {
        try Self.withDirectory { directory in
            let source = try Self.machine(at: "\(directory)/state.sqlite")
            _ = try source.apply(KVDeterminismTests.randomLog(seed: seed, count: 800))
            let (chunks, metadata) = try Self.transfer(
                from: "\(directory)/state.sqlite", to: "\(directory)/copy.sqlite", chunkBytes: 512)
            #expect(chunks > 5)
            let copy = try Self.machine(at: "\(directory)/copy.sqlite")
            #expect(copy.appliedIndex == source.appliedIndex)
            #expect(try copy.snapshot() == source.snapshot(), "seed \(seed): the streamed state differs")
            #expect(try copy.installedSnapshot() == metadata)
            #expect(try source.installedSnapshot() == nil, "the leader's own database records no install")
        }
    }

    /// A reader sees the state as of its creation, however much the state machine applies while
    /// the transfer runs (WAL read transaction).
    @Test func readerIsConsistentWhileWritesContinue() throws {
        try Self.withDirectory { directory in
            let path = "\(directory)/state.sqlite"
            let source = try Self.machine(at: path)
            let log = KVDeterminismTests.randomLog(seed: 9, count: 600)
            _ = try source.apply(Array(log.prefix(300)))
            let expected = try source.snapshot()
            let reader = try StateSnapshotReader(path: path)
            #expect(reader.appliedIndex == 300)
            let writer = try StateSnapshotWriter(path: "\(directory)/copy.sqlite", metadata: Self.metadata(300))
            var applied = 300
            while !reader.isFinished {
                try writer.write(try reader.nextChunk(maxBytes: 400).bytes)
                if applied < 600 {
                    _ = try source.apply([log[applied]])
                    applied += 1
                }
            }
            try writer.finish()
            #expect(try Self.machine(at: "\(directory)/copy.sqlite").snapshot() == expected)
            #expect(source.appliedIndex > 300)
        }
    }

    /// A damaged chunk is refused (checksum) and writes nothing; a finished file whose applied
    /// index is not the snapshot's is refused.
    @Test func damagedChunksAndWrongIndexRefused() throws {
        try Self.withDirectory { directory in
            let source = try Self.machine(at: "\(directory)/state.sqlite")
            _ = try source.apply(KVDeterminismTests.randomLog(seed: 4, count: 200))
            let reader = try StateSnapshotReader(path: "\(directory)/state.sqlite")
            var chunk = try reader.nextChunk(maxBytes: 1 << 20).bytes
            let writer = try StateSnapshotWriter(path: "\(directory)/copy.sqlite", metadata: Self.metadata(199))
            chunk[chunk.count / 2] ^= 0x40
            #expect(throws: StorageError.self) { try writer.write(chunk) }
            #expect(writer.rowsWritten == 0)
            chunk[chunk.count / 2] ^= 0x40
            try writer.write(chunk)
            #expect(throws: StorageError.self) { try writer.finish() }  // the state is at 200, not 199
            writer.discard()
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/copy.sqlite"))
        }
    }

    /// Installing swaps the whole database by rename: the machine then reads the new state, and
    /// nothing of the old one (its WAL included) leaks into it.
    @Test func replaceDatabaseSwapsInTheReceivedState() throws {
        try Self.withDirectory { directory in
            let leader = try Self.machine(at: "\(directory)/leader.sqlite")
            _ = try leader.apply(KVDeterminismTests.randomLog(seed: 5, count: 400))
            let follower = try Self.machine(at: "\(directory)/follower.sqlite")
            _ = try follower.apply(Array(KVDeterminismTests.randomLog(seed: 6, count: 100)))
            let (_, metadata) = try Self.transfer(
                from: "\(directory)/leader.sqlite", to: "\(directory)/follower.sqlite.incoming", chunkBytes: 4096)
            try follower.replaceDatabase(with: "\(directory)/follower.sqlite.incoming")
            #expect(follower.appliedIndex == 400)
            #expect(try follower.snapshot() == leader.snapshot())
            #expect(try Self.machine(at: "\(directory)/follower.sqlite").snapshot() == leader.snapshot(), "durable after reopen")
            #expect(try follower.installedSnapshot() == metadata)
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/follower.sqlite.incoming"))
        }
    }

    static func driver(storage: SQLiteLogStorage, machine: KVStateMachine) throws -> RaftDriver {
        try RaftDriver(
            configuration: RaftConfiguration(id: 2), bootstrap: membership,
            settings: RaftDriver.Settings(clientAddresses: [:], clusterID: "t"), storage: storage, machine: machine, seed: 1,
            metrics: DaemonMetrics(), send: { _ in }, monotonicMillis: { 0 }, wallMillis: { 0 })
    }

    /// A crash after the state database was swapped but before the log storage recorded the
    /// snapshot: the restart records it (dropping the log entries of another history), so the
    /// node resumes at the installed index instead of failing on a log shorter than its state.
    @Test func restartCompletesAnInterruptedInstall() throws {
        try Self.withDirectory { directory in
            let leader = try Self.machine(at: "\(directory)/leader.sqlite")
            _ = try leader.apply(KVDeterminismTests.randomLog(seed: 7, count: 300))
            _ = try Self.transfer(from: "\(directory)/leader.sqlite", to: "\(directory)/state.sqlite", chunkBytes: 8192)
            let storage = try SQLiteLogStorage(path: "\(directory)/raft-log.sqlite")
            let stale = (1...20).map { Entry(term: 1, index: LogIndex($0), payload: .noop) }
            try storage.persist(hardState: HardState(currentTerm: 2, commitIndex: 20), entries: stale, snapshot: nil, sync: true)
            let driver = try Self.driver(storage: storage, machine: try Self.machine(at: "\(directory)/state.sqlite"))
            #expect(driver.status.snapshotIndex == 300)
            #expect(driver.status.appliedIndex == 300)
            let state = try SQLiteLogStorage(path: "\(directory)/raft-log.sqlite").load()
            #expect(state.snapshot?.metadata == Self.metadata(300))
            #expect(state.entries.isEmpty, "entries of another history are dropped (§7)")
        }
    }

    /// A log compacted past the state database means the state lost writes it was trusted with:
    /// the node refuses to start rather than serve a state with a hole.
    @Test func stateBehindCompactedLogRefusesToStart() throws {
        try Self.withDirectory { directory in
            let machine = try Self.machine(at: "\(directory)/state.sqlite")
            _ = try machine.apply(KVDeterminismTests.randomLog(seed: 8, count: 10))
            let storage = try SQLiteLogStorage(path: "\(directory)/raft-log.sqlite")
            try storage.compact(to: Snapshot(metadata: Self.metadata(50, term: 1), data: []))
            #expect(throws: DaemonError.self) { try Self.driver(storage: storage, machine: machine) }
        }
    }
}
