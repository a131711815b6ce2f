import Foundation
import RaftCore
import Testing

@testable import KVStore

#if canImport(Glibc)
    import Glibc
#endif

/// The SQLite log under real failures: a writer process killed with SIGKILL at random moments, a
/// damaged file, damaged rows, and a full disk. Each must end in either the full acknowledged
/// state or a clear `StorageError` — never a crash, never lost acknowledged entries.
@Suite struct StorageCrashTests {
    /// The crash writer's payload for `index` (a copy of `crashWriterPayload` in kvd-storage-bench).
    static func writerPayload(index: UInt64, bytes: Int = 128) -> [UInt8] {
        var payload = (0..<8).map { UInt8(truncatingIfNeeded: index >> (8 * UInt64($0))) }
        payload += (0..<max(bytes - 8, 0)).map { UInt8(truncatingIfNeeded: index &* 31 &+ UInt64($0)) }
        return payload
    }

    /// kvd-storage-bench, built next to the test bundle (`swift build --build-tests` and
    /// `swift test` build every product into the same directory).
    static func benchBinary() -> URL? {
        let candidates = [
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent(),
            Bundle.main.bundleURL.deletingLastPathComponent(),
            Bundle.main.bundleURL,
        ].map { $0.appendingPathComponent("kvd-storage-bench") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The `durable N` lines the writer completed (a line cut by the kill is ignored).
    static func durableIndexes(in output: String) -> [UInt64] {
        output.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { line in
            line.hasPrefix("durable ") ? UInt64(line.dropFirst("durable ".count)) : nil
        }
    }

    @Test func everyEntryReportedDurableSurvivesSIGKILL() throws {
        guard let binary = Self.benchBinary() else {
            Issue.record("kvd-storage-bench is not built next to the test bundle; run `swift build --build-tests` first")
            return
        }
        let seed = ProcessInfo.processInfo.environment["KV_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64(UInt32.max))
        print("StorageCrashTests seed \(seed) (replay: KV_CRASH_SEED=\(seed) swift test --filter everyEntryReportedDurableSurvivesSIGKILL)")
        var random = SplitMix64(seed: seed)
        let directory = try StorageTestDirectory("crash")
        let database = directory.file("raft.sqlite")
        var previouslyDurable: UInt64 = 0
        for round in 1...6 {
            let runMilliseconds = 40 + random.next() % 400
            let outputPath = directory.file("writer-\(round).out")
            _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            let writer = Process()
            writer.executableURL = binary
            writer.arguments = ["--crash-writer", database, "--seed", String(random.next() % 1_000_000)]
            writer.standardOutput = output
            try writer.run()
            usleep(UInt32(runMilliseconds * 1_000))
            kill(writer.processIdentifier, SIGKILL)
            writer.waitUntilExit()
            try output.close()
            #expect(writer.terminationReason == .uncaughtSignal, "round \(round) seed \(seed): the writer stopped on its own")
            let durable = Self.durableIndexes(in: try String(contentsOfFile: outputPath, encoding: .utf8))
            let maxDurable = durable.max() ?? previouslyDurable
            try checkRecoveredLog(database, mustHold: max(maxDurable, previouslyDurable), context: "round \(round) seed \(seed)")
            print("crash round \(round): killed after \(runMilliseconds) ms, \(durable.count) commits reported, durable through \(maxDurable)")
            previouslyDurable = max(maxDurable, previouslyDurable)
        }
        #expect(previouslyDurable > 0, "seed \(seed): the writer never reported a durable commit")
    }

    /// Reopens the log: contiguous from 1, every entry with its writer payload, at least through
    /// `mustHold`, and `PRAGMA integrity_check` clean.
    private func checkRecoveredLog(_ database: String, mustHold: UInt64, context: String) throws {
        let storage = try SQLiteLogStorage(path: database)
        let state = try storage.load()
        let last = state.entries.last?.index.rawValue ?? 0
        #expect(last >= mustHold, "\(context): entries through \(mustHold) were reported durable, the log ends at \(last)")
        for (offset, entry) in state.entries.enumerated() {
            guard entry.index.rawValue == UInt64(offset + 1), entry.payload == .command(Self.writerPayload(index: entry.index.rawValue))
            else {
                Issue.record("\(context): entry at position \(offset) is \(entry.index) with the wrong content")
                break
            }
        }
        #expect(try storage.db.integrityCheck() == [], "\(context)")
    }
}

/// Damaged files, damaged rows and a full disk give a clear `StorageError` naming the file.
@Suite struct StorageFailureTests {
    typealias F = LogFixtures

    /// A closed log at `path` holding entries 1...20 and a hard state.
    private func writeLog(_ path: String) throws {
        let storage = try SQLiteLogStorage(path: path)
        try storage.persist(hardState: HardState(currentTerm: 2, votedFor: 1, commitIndex: 10), entries: F.entries(1...20, term: 2), snapshot: nil, sync: true)
    }

    private func overwrite(_ path: String, at offset: UInt64, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    private func expectCorrupt(_ context: String, _ body: () throws(StorageError) -> Void, mentioning words: [String]) {
        do {
            try body()
            Issue.record("\(context): no error")
        } catch {
            guard case .corrupt(let detail) = error else {
                Issue.record("\(context): expected .corrupt, got \(error)")
                return
            }
            for word in words { #expect(detail.contains(word), "\(context): \(detail)") }
        }
    }

    @Test func aDamagedFileHeaderIsReportedAsCorrupt() throws {
        let directory = try StorageTestDirectory("corrupt-header")
        let path = directory.file("raft.sqlite")
        try writeLog(path)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the WAL was checkpointed on close")
        try overwrite(path, at: 0, with: Array(repeating: 0xA5, count: 100))
        expectCorrupt("header", { () throws(StorageError) in _ = try SQLiteLogStorage(path: path) }, mentioning: [path, "not a database"])
        // A file that was never a database at all.
        let text = directory.file("notes.txt")
        try "hello, not SQLite at all, but long enough to look like a header............................"
            .write(toFile: text, atomically: false, encoding: .utf8)
        expectCorrupt("text file", { () throws(StorageError) in _ = try SQLiteLogStorage(path: text) }, mentioning: [text])
    }

    @Test func aDamagedTablePageIsReportedAsCorrupt() throws {
        let directory = try StorageTestDirectory("corrupt-page")
        let path = directory.file("raft.sqlite")
        try writeLog(path)
        let (rootPage, pageSize) = try {
            let db = try SQLiteConnection(path: path)
            return (
                try db.scalarInt64("SELECT rootpage FROM sqlite_schema WHERE name = 'raft_entries'") ?? 0,
                try db.scalarInt64("PRAGMA page_size") ?? 4096
            )
        }()
        try #require(rootPage > 1)
        try overwrite(path, at: UInt64((rootPage - 1) * pageSize), with: Array(repeating: 0xFF, count: Int(pageSize)))
        expectCorrupt("entries page", { () throws(StorageError) in _ = try SQLiteLogStorage(path: path).load() }, mentioning: [path])
        var options = SQLiteLogStorage.Options()
        options.verifyOnOpen = true
        expectCorrupt("quick_check on open", { () throws(StorageError) in _ = try SQLiteLogStorage(path: path, options: options) }, mentioning: [path])
    }

    @Test(arguments: [
        ("UPDATE raft_entries SET kind = 2, payload = x'01FFFFFFFF' WHERE idx = 7", "entry 7"),
        ("UPDATE raft_entries SET kind = 9 WHERE idx = 7", "unknown payload kind 9"),
        ("UPDATE raft_entries SET kind = 0 WHERE idx = 7", "no-op entry carries"),
        // Node 1 as both voter and learner: ClusterMembership's initialiser would trap on it.
        ("UPDATE raft_entries SET kind = 2, payload = x'01010000000100000000000000010000000100000000000000' WHERE idx = 7", "both voter and learner"),
        ("UPDATE raft_entries SET kind = 2, payload = x'02' WHERE idx = 7", "version 2"),
        ("DELETE FROM raft_entries WHERE idx = 7", "gap"),
        ("DELETE FROM raft_entries WHERE idx = 1", "entry 2 where entry 1"),
        ("INSERT INTO raft_snapshot VALUES (0, 3, 2, x'010000000000000000', x'')", "entry 1 where entry 4"),
        ("INSERT INTO raft_snapshot VALUES (0, 3, 2, x'01', x'')", "truncated"),
        ("UPDATE raft_meta SET value = 99 WHERE key = 'schema_version'", "schema version 99"),
    ])
    func aGarbageRowIsReportedAsCorrupt(_ damage: String, _ expected: String) throws {
        let directory = try StorageTestDirectory("corrupt-row")
        let path = directory.file("raft.sqlite")
        try writeLog(path)
        try SQLiteConnection(path: path).execute(damage)
        expectCorrupt(damage, { () throws(StorageError) in _ = try SQLiteLogStorage(path: path).load() }, mentioning: [path, expected])
    }

    /// Fills a 256 KiB tmpfs (root only): the failing persist is a clear `.io` error naming the
    /// file, a retry fails cleanly too, and after space is freed every acknowledged entry is there.
    @Test func aFullDiskIsAnIOErrorAndLosesNothingAcknowledged() throws {
        guard getuid() == 0 else {
            print("skipping the full-disk test: mounting a tmpfs needs root")
            return
        }
        let directory = try StorageTestDirectory("full-disk")
        guard mount("tmpfs", directory.path, "tmpfs", 0, "size=256k") == 0 else {
            print("skipping the full-disk test: mount -t tmpfs failed: \(String(cString: strerror(errno)))")
            return
        }
        defer { umount2(directory.path, Int32(MNT_DETACH)) }
        let path = directory.file("raft.sqlite")
        var acknowledged: UInt64 = 0
        do {
            let storage = try SQLiteLogStorage(path: path)
            let failure = fillUntilFailure(storage, acknowledged: &acknowledged)
            guard case .io(let detail) = failure else {
                Issue.record("a full disk gave \(String(describing: failure)), not .io")
                return
            }
            #expect(detail.contains(path) && detail.contains("full"), "\(detail)")
            print("full disk after \(acknowledged) entries: \(detail)")
            // Keep going as a careless driver would: each further write either fails the same clear
            // way or succeeds (SQLite can reuse WAL space the failed commit took); what succeeds is
            // acknowledged and must survive like the rest.
            for _ in 0..<20 {
                guard let again = fillUntilFailure(storage, acknowledged: &acknowledged) else { break }
                guard case .io(let detail) = again, detail.contains(path) else {
                    Issue.record("a write on a full disk failed with \(again)")
                    break
                }
            }
        }
        print("full disk: \(acknowledged) entries acknowledged in all")
        #expect(acknowledged > 100, "the tmpfs filled after only \(acknowledged) entries")
        // Reopening on the still-full disk may work or fail, but only with a StorageError.
        if let state = try? SQLiteLogStorage(path: path).load() {
            #expect(state.entries.count >= Int(acknowledged))
        }
        // The operator frees space and restarts: every acknowledged entry is there.
        try #require(mount("tmpfs", directory.path, "tmpfs", UInt(MS_REMOUNT), "size=8m") == 0)
        let reopened = try SQLiteLogStorage(path: path)
        let state = try reopened.load()
        #expect(state.entries.count >= Int(acknowledged))
        #expect(Array(state.entries.prefix(Int(acknowledged))) == F.entries(1...acknowledged, term: 1))
        #expect(try reopened.db.integrityCheck() == [])
    }

    /// Persists 16-entry synced batches until one fails; returns that failure.
    private func fillUntilFailure(_ storage: SQLiteLogStorage, acknowledged: inout UInt64) -> StorageError? {
        for _ in 0..<10_000 {
            let batch = F.entries(acknowledged + 1...acknowledged + 16, term: 1)
            do {
                try storage.persist(hardState: HardState(currentTerm: 1, commitIndex: LogIndex(acknowledged)), entries: batch, snapshot: nil, sync: true)
                acknowledged += 16
            } catch {
                return error
            }
        }
        return nil
    }

    @Test func membershipDecodingNeverTrapsOnRandomBytes() {
        var random = SplitMix64(seed: 42)
        let valid = RaftCodec.encode(ClusterMembership(voters: [1, 2, 3], learners: [7]))
        #expect((try? RaftCodec.decodeMembership(valid, context: "valid")) == ClusterMembership(voters: [1, 2, 3], learners: [7]))
        for length in 0..<valid.count {
            #expect(throws: StorageError.self) { try RaftCodec.decodeMembership(Array(valid.prefix(length)), context: "cut") }
        }
        for _ in 0..<20_000 {
            var bytes = (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if !bytes.isEmpty && random.next() % 2 == 0 { bytes[0] = RaftCodec.version }
            _ = try? RaftCodec.decodeMembership(bytes, context: "fuzz")
        }
    }
}
