import Foundation
import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// `kvd --force-new-cluster`: the survivor's log, rewritten to a one-node membership.
@Suite struct ForceNewClusterTests {
    @Test("force-new-cluster appends a one-node membership after every entry, in a higher term, once")
    func forceNewClusterKeepsTheLog() throws {
        try StateSnapshotTests.withDirectory { directory in
            let path = "\(directory)/raft-log.sqlite"
            let storage = try SQLiteLogStorage(path: path)
            let entries = (1...5).map { Entry(term: 3, index: LogIndex($0), payload: .noop) }
            try storage.persist(hardState: HardState(currentTerm: 7, votedFor: 2, commitIndex: 4), entries: entries, snapshot: nil, sync: true)
            let outcome = try #require(try ForceNewCluster.rewrite(logPath: path, id: 2, bootstrap: ClusterMembership(voters: [1, 2, 3])))
            #expect(outcome.index == 6 && outcome.term == 8)
            let state = try SQLiteLogStorage(path: path).load()
            #expect(state.entries.count == 6)
            #expect(state.entries.last?.payload == .membership(ClusterMembership(voters: [2])))
            #expect(state.hardState.currentTerm == 8 && state.hardState.commitIndex == 4)
            #expect(try ForceNewCluster.rewrite(logPath: path, id: 2, bootstrap: ClusterMembership(voters: [1, 2, 3])) == nil)
            // A log that records no membership follows the configuration file; even a file already
            // cut down to this node gets the entry, so the log alone decides from then on.
            let fresh = "\(directory)/fresh.sqlite"
            try SQLiteLogStorage(path: fresh).persist(
                hardState: HardState(currentTerm: 2, votedFor: nil, commitIndex: 3), entries: Array(entries.prefix(3)), snapshot: nil, sync: true)
            let written = try #require(try ForceNewCluster.rewrite(logPath: fresh, id: 2, bootstrap: ClusterMembership(voters: [2])))
            #expect(written.index == 4 && written.term == 4)
        }
    }
}
