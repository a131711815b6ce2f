import Foundation
import RaftCore
import Synchronization
import Testing

@testable import KVStore

/// Log compaction trusts `KVStateMachine.makeDurable` to put every applied entry on the disk (the
/// state commits with `synchronous=NORMAL`, so its WAL frames are not synced at commit). It used
/// to rewrite a row with the same bytes under `synchronous=FULL`, which SQLite turns into a commit
/// that writes and syncs nothing: the log was cut while the state was still only in the page
/// cache, and a failing fsync went unnoticed.
@Suite struct MakeDurableTests {
    /// The files a state database's syncs reached, and a state machine on it.
    final class SyncedFiles: Sendable {
        let paths = Mutex<[String]>([])
        let failWith = Mutex<Int32>(0)

        func sync(_ fd: Int32) -> Int32 {
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? "?"
            paths.withLock { $0.append(target) }
            return failWith.withLock { $0 }
        }
    }

    func withStateMachine(_ body: (KVStateMachine, SyncedFiles, String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-durable-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = SyncedFiles()
        var options = SQLiteConnection.Options()
        options.synchronous = .normal
        options.walAutocheckpointPages = 0
        options.syncFile = { fd in files.sync(fd) }
        let path = dir.appendingPathComponent("state.sqlite").path
        let machine = try KVStateMachine(database: try SQLiteConnection(path: path, options: options))
        let command = KVCommand(
            timestampMillis: 1, operation: .put(key: Array("k".utf8), value: Array("v".utf8), condition: .always, lease: nil, fence: nil))
        _ = try machine.apply([Entry(term: Term(1), index: LogIndex(1), payload: .command(command.encoded()))])
        try body(machine, files, path)
    }

    @Test func makeDurableSyncsTheWALThatHoldsTheAppliedEntries() throws {
        try withStateMachine { machine, files, path in
            files.paths.withLock { $0.removeAll() }
            try machine.makeDurable()
            let synced = files.paths.withLock { $0 }
            #expect(synced.contains { $0.hasSuffix("state.sqlite-wal") }, "synced: \(synced)")
            #expect(synced.contains { $0.hasSuffix("state.sqlite") }, "synced: \(synced)")
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    @Test func aFailedSyncIsAnIOErrorThatStopsTheNode() throws {
        try withStateMachine { machine, files, _ in
            files.failWith.withLock { $0 = EIO }
            do {
                try machine.makeDurable()
                Issue.record("makeDurable succeeded although every fdatasync failed")
            } catch {
                guard let storage = error as? StorageError, case .io(let message) = storage else {
                    Issue.record("expected an I/O error, got \(error)")
                    return
                }
                #expect(message.contains("fdatasync"))
                #expect(message.contains("state.sqlite"))
            }
        }
    }
}
