import Foundation
import RaftCore
import Testing

@testable import KVStore

/// Which `LogStorage` implementation a contract test runs against.
enum LogStorageKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory
    case sqlite

    var testDescription: String { rawValue }
}

/// A fresh temporary directory, removed when the value is no longer used.
final class StorageTestDirectory {
    let path: String

    init(_ label: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// One storage under test and how to restart it: the SQLite storage reopens its file, the memory
/// storage keeps its durable state. `crash()` models a process crash: the memory storage loses
/// unsynced writes (its model is a power failure, the stricter case), SQLite may keep them.
final class LogStorageHarness {
    let kind: LogStorageKind
    private var memory = MemoryLogStorage()
    private(set) var sqlite: SQLiteLogStorage?
    let directory: StorageTestDirectory
    var databasePath: String { directory.file("raft.sqlite") }

    init(_ kind: LogStorageKind) throws {
        self.kind = kind
        directory = try StorageTestDirectory("contract")
        if kind == .sqlite { sqlite = try SQLiteLogStorage(path: databasePath) }
    }

    func load() throws(StorageError) -> PersistentState {
        switch kind {
        case .memory: return try memory.load()
        case .sqlite: return try opened().load()
        }
    }

    func persist(
        hardState: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil, sync: Bool = true
    ) throws(StorageError) {
        switch kind {
        case .memory: try memory.persist(hardState: hardState, entries: entries, snapshot: snapshot, sync: sync)
        case .sqlite: try opened().persist(hardState: hardState, entries: entries, snapshot: snapshot, sync: sync)
        }
    }

    func compact(to snapshot: Snapshot) throws(StorageError) {
        switch kind {
        case .memory: try memory.compact(to: snapshot)
        case .sqlite: try opened().compact(to: snapshot)
        }
    }

    /// Closes and reopens: what a clean restart reads back.
    func reopen() throws(StorageError) {
        switch kind {
        case .memory: memory = MemoryLogStorage(memory.durable)
        case .sqlite:
            sqlite = nil
            sqlite = try SQLiteLogStorage(path: databasePath)
        }
    }

    /// Forgets what a crash may lose, then restarts.
    func crash() throws(StorageError) {
        switch kind {
        case .memory: memory.crash()
        case .sqlite: try reopen()
        }
    }

    private func opened() throws(StorageError) -> SQLiteLogStorage {
        guard let sqlite else { throw .io("the test closed the storage") }
        return sqlite
    }
}

/// Builders for log values.
enum LogFixtures {
    static let membership = ClusterMembership(voters: [1, 2, 3], learners: [4])

    static func entry(_ index: UInt64, term: UInt64, _ payload: Entry.Payload? = nil) -> Entry {
        Entry(term: Term(term), index: LogIndex(index), payload: payload ?? .command(Array("value-\(index)".utf8)))
    }

    static func entries(_ range: ClosedRange<UInt64>, term: UInt64) -> [Entry] {
        range.map { entry($0, term: term) }
    }

    static func snapshot(at index: UInt64, term: UInt64, data: [UInt8] = [1, 2, 3]) -> Snapshot {
        Snapshot(
            metadata: SnapshotMetadata(lastIncludedIndex: LogIndex(index), lastIncludedTerm: Term(term), membership: membership),
            data: data)
    }
}

/// The `LogStorage` contract (see `Boundaries.swift` and `Ready`), run against the in-memory and the
/// SQLite storage alike, each check followed by a close-and-reopen that must read back the same.
@Suite struct LogStorageContractTests {
    typealias F = LogFixtures

    /// Reads back `expected` now and again after a restart.
    private func expectState(_ harness: LogStorageHarness, _ expected: PersistentState) throws {
        #expect(try harness.load() == expected)
        try harness.reopen()
        #expect(try harness.load() == expected, "after reopening")
    }

    @Test(arguments: LogStorageKind.allCases)
    func emptyStorageLoadsTheInitialState(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try expectState(harness, PersistentState())
    }

    @Test(arguments: LogStorageKind.allCases)
    func appendedEntriesOfEveryPayloadKindLoadBack(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        let entries = [
            F.entry(1, term: 1, .noop), F.entry(2, term: 1, .command([])), F.entry(3, term: 1, .command([0, 255, 7])),
            F.entry(4, term: 2, .membership(F.membership)),
            F.entry(5, term: 2, .membership(ClusterMembership(voters: [9]))),
        ]
        let hardState = HardState(currentTerm: 2, votedFor: 1, commitIndex: 3)
        try harness.persist(hardState: hardState, entries: entries)
        try harness.persist(entries: F.entries(6...8, term: 2))
        try expectState(harness, PersistentState(hardState: hardState, entries: entries + F.entries(6...8, term: 2)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func entriesReplaceAConflictingSuffix(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...5, term: 1))
        try harness.persist(entries: F.entries(3...4, term: 2))
        try expectState(harness, PersistentState(entries: F.entries(1...2, term: 1) + F.entries(3...4, term: 2)))
        // Rewriting from the very first entry replaces the whole log.
        try harness.persist(entries: F.entries(1...1, term: 3))
        try expectState(harness, PersistentState(entries: F.entries(1...1, term: 3)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func appendsThatLeaveAGapAreRefusedAndChangeNothing(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...3, term: 1))
        let before = try harness.load()
        for bad in [F.entries(5...6, term: 1), F.entries(0...1, term: 1)] {
            #expect(throws: StorageError.self) {
                // The hard state in the same call must not land either: one Ready, one atomic write.
                try harness.persist(hardState: HardState(currentTerm: 9), entries: bad)
            }
        }
        try expectState(harness, before)
        // After a snapshot at 5 the log starts at 6: an append at or before 5 leaves a hole.
        try harness.persist(snapshot: F.snapshot(at: 5, term: 1))
        #expect(throws: StorageError.self) { try harness.persist(entries: F.entries(5...6, term: 1)) }
        try harness.persist(entries: F.entries(6...7, term: 1))
        try expectState(harness, PersistentState(snapshot: F.snapshot(at: 5, term: 1), entries: F.entries(6...7, term: 1)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func hardStateRoundTrips(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        let voted = HardState(currentTerm: 7, votedFor: 3, commitIndex: 0)
        try harness.persist(hardState: voted)
        try expectState(harness, PersistentState(hardState: voted))
        let unvoted = HardState(currentTerm: Term(UInt64(Int64.max)), votedFor: nil, commitIndex: 12)
        try harness.persist(hardState: unvoted, sync: false)
        try harness.persist(hardState: nil, sync: true)
        try expectState(harness, PersistentState(hardState: unvoted))
    }

    @Test(arguments: LogStorageKind.allCases)
    func snapshotKeepsTheFollowingEntriesWhenTermsMatch(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...3, term: 1) + F.entries(4...6, term: 2))
        let snapshot = F.snapshot(at: 4, term: 2, data: Array(repeating: 0xAB, count: 70_000))
        try harness.persist(snapshot: snapshot)
        try expectState(harness, PersistentState(snapshot: snapshot, entries: F.entries(5...6, term: 2)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func snapshotDiscardsTheLogWhenTermsDifferOrItIsAhead(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...6, term: 1))
        let conflicting = F.snapshot(at: 4, term: 2)
        try harness.persist(snapshot: conflicting)
        try expectState(harness, PersistentState(snapshot: conflicting))
        let ahead = F.snapshot(at: 20, term: 3)
        try harness.persist(entries: F.entries(5...6, term: 2))
        try harness.persist(snapshot: ahead, sync: true)
        try expectState(harness, PersistentState(snapshot: ahead))
        try harness.persist(entries: F.entries(21...22, term: 3))
        try expectState(harness, PersistentState(snapshot: ahead, entries: F.entries(21...22, term: 3)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func anOlderSnapshotIsIgnored(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...8, term: 1))
        try harness.persist(snapshot: F.snapshot(at: 5, term: 1))
        try harness.persist(snapshot: F.snapshot(at: 3, term: 1, data: [9]))
        try harness.compact(to: F.snapshot(at: 5, term: 1, data: [9]))
        try expectState(harness, PersistentState(snapshot: F.snapshot(at: 5, term: 1), entries: F.entries(6...8, term: 1)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func snapshotEntriesAndHardStateInOneReady(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...4, term: 1))
        let hardState = HardState(currentTerm: 3, votedFor: 2, commitIndex: 10)
        // The snapshot goes first, then the entries after it, then the hard state.
        try harness.persist(hardState: hardState, entries: F.entries(11...12, term: 3), snapshot: F.snapshot(at: 10, term: 3))
        try expectState(
            harness, PersistentState(hardState: hardState, snapshot: F.snapshot(at: 10, term: 3), entries: F.entries(11...12, term: 3)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func compactDiscardsCoveredEntriesDurably(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(entries: F.entries(1...10, term: 1))
        try harness.compact(to: F.snapshot(at: 6, term: 1))
        try harness.persist(entries: F.entries(11...11, term: 1))
        try harness.compact(to: F.snapshot(at: 11, term: 1))
        try expectState(harness, PersistentState(snapshot: F.snapshot(at: 11, term: 1)))
        try harness.persist(entries: F.entries(12...13, term: 2))
        try expectState(harness, PersistentState(snapshot: F.snapshot(at: 11, term: 1), entries: F.entries(12...13, term: 2)))
    }

    @Test(arguments: LogStorageKind.allCases)
    func syncedWritesSurviveACrashAndUnsyncedOnesMayNot(_ kind: LogStorageKind) throws {
        let harness = try LogStorageHarness(kind)
        try harness.persist(hardState: HardState(currentTerm: 1), entries: F.entries(1...3, term: 1), sync: true)
        let synced = try harness.load()
        try harness.persist(hardState: HardState(currentTerm: 1, commitIndex: 2), entries: F.entries(4...5, term: 1), sync: false)
        let unsynced = try harness.load()
        try harness.crash()
        let afterCrash = try harness.load()
        // Memory models a power failure (unsynced writes lost); SQLite in WAL mode keeps them through a
        // process crash. Both are allowed; a mix of the two is not: one Ready is one atomic write.
        #expect(afterCrash == synced || afterCrash == unsynced)
        // A later synced write makes everything before it durable, even a Ready with nothing new.
        try harness.persist(hardState: HardState(currentTerm: 2), sync: false)
        try harness.persist(sync: true)
        try harness.crash()
        #expect(try harness.load().hardState == HardState(currentTerm: 2))
    }
}

/// Random sequences of persists and compactions applied to both storages must read back the same
/// state after every step and after every restart: the SQLite storage has `MemoryLogStorage`'s
/// semantics exactly, including which writes it refuses.
@Suite struct LogStorageDifferentialTests {
    @Test func sqliteMatchesMemoryOnRandomOperations() throws {
        let seed = ProcessInfo.processInfo.environment["KV_STORAGE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64(UInt32.max))
        print("LogStorageDifferentialTests seed \(seed) (replay: KV_STORAGE_SEED=\(seed) swift test --filter sqliteMatchesMemoryOnRandomOperations)")
        var random = SplitMix64(seed: seed)
        let memory = try LogStorageHarness(.memory)
        let sqlite = try LogStorageHarness(.sqlite)
        var term: UInt64 = 1
        var outcomes = (accepted: 0, refused: 0)
        for step in 0..<300 {
            let state = try memory.load()
            let first = state.snapshot.map { $0.metadata.lastIncludedIndex.rawValue + 1 } ?? 1
            let last = state.entries.last?.index.rawValue ?? (first - 1)
            if random.next() % 4 == 0 { term += 1 }
            let choice = random.next() % 10
            let action: (LogStorageHarness) throws(StorageError) -> Void
            switch choice {
            case 0...5:
                // Mostly valid appends (sometimes overwriting a suffix), now and then a gap.
                let start = first - 1 + random.next() % (last + 4 - first)
                let count = 1 + random.next() % 8
                let entries = LogFixtures.entries(start...(start + count - 1), term: term)
                let hardState = random.next() % 2 == 0 ? HardState(currentTerm: Term(term), votedFor: NodeID(1 + random.next() % 3), commitIndex: LogIndex(last)) : nil
                let sync = random.next() % 3 != 0
                action = { (h) throws(StorageError) in try h.persist(hardState: hardState, entries: entries, sync: sync) }
            case 6, 7:
                let index = last > 0 ? random.next() % (last + 3) : 0
                let snapshotTerm = random.next() % 2 == 0 ? (state.entries.first { $0.index.rawValue == index }?.term.rawValue ?? term) : term
                let snapshot = LogFixtures.snapshot(at: index, term: snapshotTerm, data: [UInt8(truncatingIfNeeded: step)])
                action = { (h) throws(StorageError) in try h.persist(snapshot: snapshot, sync: true) }
            default:
                guard let covered = state.entries.randomElement(using: &random) else { continue }
                let snapshot = LogFixtures.snapshot(at: covered.index.rawValue, term: covered.term.rawValue)
                action = { (h) throws(StorageError) in try h.compact(to: snapshot) }
            }
            let memoryResult = Result { () throws(StorageError) in try action(memory) }
            let sqliteResult = Result { () throws(StorageError) in try action(sqlite) }
            switch (memoryResult, sqliteResult) {
            case (.success, .success): outcomes.accepted += 1
            case (.failure(.corrupt), .failure(.corrupt)): outcomes.refused += 1
            default: Issue.record("step \(step) seed \(seed): memory \(memoryResult), sqlite \(sqliteResult)")
            }
            #expect(try sqlite.load() == memory.load(), "step \(step) seed \(seed)")
            if random.next() % 20 == 0 {
                // A clean restart after a synced write: both must read back their full state.
                try memory.persist(sync: true)
                try sqlite.persist(sync: true)
                try memory.reopen()
                try sqlite.reopen()
                #expect(try sqlite.load() == memory.load(), "after reopening at step \(step) seed \(seed)")
            }
        }
        // The sequence must have exercised both paths, or it proved nothing about refusals.
        #expect(outcomes.accepted > 100 && outcomes.refused > 5, "seed \(seed): \(outcomes)")
    }
}
