import Foundation
import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// `kvd --restore-from`: a new cluster's node from a backup file.
extension BackupTests {
    @Test("a restore builds a node whose log starts at the backup's index and term, with every key; leases expire")
    func restoreKeepsKeysAndTokensGoForward() throws {
        try StateSnapshotTests.withDirectory { directory in
            let (source, lockToken) = try Self.sourceState(directory)
            let saved = try Self.save("\(directory)/source.sqlite", to: "\(directory)/backup.kvd")
            let config = try Self.config(directory, clusterID: "new")
            let outcome = try Restore.run(
                Restore.Options(configPath: config, nodeID: 2, backupPath: "\(directory)/backup.kvd", dataDirectory: "\(directory)/n2"))
            #expect(outcome.leasesExpired == 2)

            let restored = try StateSnapshotTests.machine(at: "\(directory)/n2/state.sqlite")
            #expect(restored.appliedIndex == saved.appliedIndex)
            for number in [0, 150, 299] { #expect(try restored.get(bytes("key-\(number)"))?.value == bytes("value-\(number)")) }
            #expect(try restored.get(bytes("late-19"))?.value == bytes("x"))
            #expect(try restored.get(bytes("leased")) == nil, "a key of an expired lease is gone")
            #expect(try restored.lockOwner(bytes("job")) == nil, "locks go with their leases; no waiter was granted")
            #expect(try restored.fenceToken(bytes("job")) == lockToken, "fences stay")
            #expect(try restored.allLeases().isEmpty)

            let state = try SQLiteLogStorage(path: "\(directory)/n2/raft-log.sqlite").load()
            let snapshot = try #require(state.snapshot)
            #expect(snapshot.metadata.lastIncludedIndex == saved.appliedIndex)
            #expect(snapshot.metadata.lastIncludedTerm == saved.term)
            #expect(snapshot.metadata.membership == ClusterMembership(voters: [1, 2, 3]))
            #expect(state.hardState.currentTerm == saved.term)
            #expect(state.entries.isEmpty)
            // The node resumes after the backup's index: its next entry, and so the next token
            // it can grant, is beyond every token granted before the backup.
            let configuration = RaftConfiguration(id: 2)
            let node = try RaftNode(
                configuration: configuration, state: state, bootstrap: ClusterMembership(voters: [9]), appliedIndex: restored.appliedIndex,
                seed: 1)
            #expect(node.status.lastLogIndex == saved.appliedIndex)
            #expect(node.status.membership == ClusterMembership(voters: [1, 2, 3]))
            let next = Entry(
                term: Term(saved.term.rawValue + 1), index: saved.appliedIndex.next,
                payload: .command(KVCommand(session: nil, timestampMillis: 2_000_000, operation: .leaseGrant(ttlMillis: 10_000)).encoded()))
            guard case .leaseGranted(let lease, _) = try #require(try restored.apply([next]).first).result else { throw TestError("no lease") }
            let grant = Entry(
                term: next.term, index: next.index.next,
                payload: .command(KVCommand(session: nil, timestampMillis: 2_000_000, operation: .lockAcquire(name: bytes("job"), leaseID: lease, wait: false)).encoded()))
            guard case .lockGranted(let token) = try #require(try restored.apply([grant]).first).result else { throw TestError("no lock") }
            #expect(token > lockToken && token > saved.appliedIndex.rawValue)
            withExtendedLifetime(source) {}
        }
    }

    @Test("a restore refuses an existing directory, the backup's own cluster id and a damaged file, leaving nothing")
    func restoreRefusals() throws {
        try StateSnapshotTests.withDirectory { directory in
            _ = try Self.sourceState(directory)
            try Self.save("\(directory)/source.sqlite", to: "\(directory)/backup.kvd")
            let options = { (config: String, backup: String, target: String) in
                Restore.Options(configPath: config, nodeID: 1, backupPath: backup, dataDirectory: target)
            }
            let sameCluster = try Self.config(directory, clusterID: "old")
            #expect(throws: DaemonError.self) { try Restore.run(options(sameCluster, "\(directory)/backup.kvd", "\(directory)/a")) }
            #expect(access("\(directory)/a", F_OK) != 0)

            let config = try Self.config(directory, clusterID: "new")
            try FileManager.default.createDirectory(atPath: "\(directory)/existing", withIntermediateDirectories: true)
            #expect(throws: DaemonError.self) { try Restore.run(options(config, "\(directory)/backup.kvd", "\(directory)/existing")) }

            let good = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/backup.kvd"))
            try good.prefix(good.count - 40).write(to: URL(fileURLWithPath: "\(directory)/short.kvd"))
            do {
                _ = try Restore.run(options(config, "\(directory)/short.kvd", "\(directory)/b"))
                Issue.record("a truncated backup was restored")
            } catch {
                #expect("\(error)".contains("truncated"), "\(error)")
            }
            #expect(access("\(directory)/b", F_OK) != 0 && access("\(directory)/b.restoring", F_OK) != 0, "a failed restore leaves nothing")
        }
    }
}
