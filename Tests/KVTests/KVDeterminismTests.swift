import Foundation
import KVStore
import RaftCore
import Testing

/// Applying the same log gives the same state on every replica and after any restart or
/// snapshot install.
@Suite struct KVDeterminismTests {
    /// A random but replayable log of every kind of command, over few keys, leases and locks so
    /// that they interact (fenced writes on held and lost locks, expiries racing renewals...).
    static func randomLog(seed: UInt64, count: Int) -> [Entry] {
        var random = SplitMix64(seed: seed)
        func pick(_ n: UInt64) -> UInt64 { random.next() % n }
        var entries: [Entry] = []
        var term: UInt64 = 1
        var clock: UInt64 = 1_000
        var grants: [UInt64] = []  // indexes of lease grants: mostly real lease ids
        var acquires: [UInt64] = []  // indexes of lock requests: likely tokens
        for index in 1...UInt64(count) {
            if pick(50) == 0 { term += 1 }
            clock += pick(400)
            let key = bytes("k\(pick(6))"), lock = bytes("l\(pick(2))")
            let lease = grants.isEmpty || pick(8) == 0 ? pick(UInt64(index)) + 1 : grants[Int(pick(UInt64(grants.count)))]
            let token = acquires.isEmpty || pick(4) == 0 ? pick(UInt64(index)) + 1 : acquires[Int(pick(UInt64(acquires.count)))]
            let fence: FenceCondition? = pick(4) == 0 ? FenceCondition(lock: lock, token: token) : nil
            let operation: KVOperation
            switch pick(13) {
            case 0: operation = .put(key: key, value: bytes("v\(index)"), condition: PutCondition(rawValue: UInt8(pick(3))) ?? .always, lease: pick(3) == 0 ? lease : nil, fence: fence)
            case 1: operation = .delete(keys: [key], fence: fence)
            case 2: operation = .compareAndSwap(key: key, expected: pick(2) == 0 ? .absent : .modIndex(pick(UInt64(index)) + 1), value: bytes("c\(index)"), fence: fence)
            case 3: operation = .increment(key: key, delta: Int64(pick(10)) - 5, fence: fence)
            case 4:
                operation = .leaseGrant(ttlMillis: 1_000 + pick(5_000))
                grants.append(index)
            case 5: operation = .leaseKeepAlive(leaseID: lease)
            case 6: operation = .leaseRevoke(leaseID: lease)
            case 7: operation = .leaseExpire(leaseID: lease, leaderTerm: term - pick(2), epoch: pick(3))
            case 8: operation = .leaseCheckpoint(leaderTerm: term, checkpoints: [LeaseCheckpoint(leaseID: lease, epoch: pick(2), remainingMillis: pick(5_000))])
            case 9:
                operation = .lockAcquire(name: lock, leaseID: lease, wait: pick(2) == 0)
                acquires.append(index)
            case 10: operation = .lockRelease(name: lock, token: token)
            case 11: operation = .fence(name: lock, token: token)
            default: operation = .sessionRegister
            }
            let session = pick(3) == 0 ? SessionStamp(clientID: pick(UInt64(index)) + 1, sequence: pick(4) + 1) : nil
            let command = KVCommand(session: session, timestampMillis: clock, operation: operation)
            entries.append(Entry(term: Term(term), index: LogIndex(index), payload: pick(40) == 0 ? .noop : .command(command.encoded())))
        }
        return entries
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func twoReplicasApplyingTheSameLogAgreeByteForByte(seed: UInt64) throws {
        let log = Self.randomLog(seed: seed, count: 600)
        let a = try KVStateMachine(database: try SQLiteConnection.inMemory())
        let b = try KVStateMachine(database: try SQLiteConnection.inMemory())
        let resultsA = try a.apply(log)
        // Replica b applies in uneven batches: batching must not change anything.
        var resultsB: [KVApplied] = []
        var start = 0
        var random = SplitMix64(seed: seed ^ 0xABCD)
        while start < log.count {
            let end = min(log.count, start + 1 + Int(random.next() % 40))
            resultsB += try b.apply(Array(log[start..<end]))
            start = end
        }
        #expect(resultsA == resultsB, "seed \(seed): replies differ")
        // The log must really exercise the state machine, or agreement proves nothing.
        let outcomes = Set(resultsA.map { "\($0.result)".prefix(8) })
        #expect(outcomes.count >= 8, "seed \(seed): too few kinds of outcome: \(outcomes)")
        #expect(resultsA.contains { if case .lockGranted = $0.result { return true } else { return false } })
        #expect(!(try a.list(prefix: [], limit: 100)).isEmpty)
        #expect(try a.snapshot() == b.snapshot(), "seed \(seed): states differ; replay with this seed")
    }

    @Test(arguments: [11, 12, 13] as [UInt64])
    func installingASnapshotEqualsReplayingTheLog(seed: UInt64) throws {
        let log = Self.randomLog(seed: seed, count: 500)
        let cut = 137 + Int(seed % 200)
        let replayed = try KVStateMachine(database: try SQLiteConnection.inMemory())
        _ = try replayed.apply(log)

        let source = try KVStateMachine(database: try SQLiteConnection.inMemory())
        _ = try source.apply(Array(log[..<cut]))
        let data = try source.snapshot()
        let metadata = SnapshotMetadata(lastIncludedIndex: LogIndex(UInt64(cut)), lastIncludedTerm: log[cut - 1].term, membership: ClusterMembership(voters: [1]))
        let installed = try KVStateMachine(database: try SQLiteConnection.inMemory())
        _ = try installed.apply(Array(Self.randomLog(seed: seed + 1000, count: 50)))  // state to be replaced
        try installed.restore(data, metadata: metadata)
        #expect(installed.appliedIndex == LogIndex(UInt64(cut)))
        _ = try installed.apply(Array(log[cut...]))
        #expect(try installed.snapshot() == replayed.snapshot(), "seed \(seed): snapshot + suffix differs from full replay")
    }

    @Test func corruptSnapshotIsRefusedAndStateKept() throws {
        let machine = try KVStateMachine(database: try SQLiteConnection.inMemory())
        _ = try machine.apply(Self.randomLog(seed: 7, count: 50))
        let before = try machine.snapshot()
        var bad = before
        bad.removeLast(3)
        let metadata = SnapshotMetadata(lastIncludedIndex: 50, lastIncludedTerm: 1, membership: ClusterMembership(voters: [1]))
        #expect(throws: StorageError.self) { try machine.restore(bad, metadata: metadata) }
        #expect(throws: StorageError.self) { try machine.restore(before, metadata: SnapshotMetadata(lastIncludedIndex: 49, lastIncludedTerm: 1, membership: ClusterMembership(voters: [1]))) }
        #expect(try machine.snapshot() == before)
    }

    @Test func appliedIndexAndStateSurviveReopeningTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-sm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("state.db").path
        let log = Self.randomLog(seed: 21, count: 300)
        let expected: [UInt8]
        do {
            let machine = try KVStateMachine(database: try SQLiteConnection(path: path))
            _ = try machine.apply(Array(log[..<200]))
            expected = try machine.snapshot()
        }
        let reopened = try KVStateMachine(database: try SQLiteConnection(path: path))
        #expect(reopened.appliedIndex == 200)
        #expect(try reopened.snapshot() == expected)
        // The driver replays from its log's start: entries already applied are skipped, never doubled.
        let applied = try reopened.apply(log)
        #expect(applied.count == 100)
        let fresh = try KVStateMachine(database: try SQLiteConnection.inMemory())
        _ = try fresh.apply(log)
        #expect(try reopened.snapshot() == fresh.snapshot())
    }
}
