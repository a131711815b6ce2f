import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    /// Writes `count` keys `prefix-0 ...` through the cluster's client.
    static func writeKeys(_ cluster: Cluster, prefix: String, count: Int) async throws {
        let client = cluster.client()
        for index in 0..<count {
            _ = try await client.write(["SET", "\(prefix)-\(index)", "value-\(index)-" + String(repeating: "x", count: 64)])
        }
        await client.close()
    }

    /// The value of `key` as node `id` itself holds it (a `READONLY` connection reads locally).
    static func localValue(_ cluster: Cluster, _ id: Int, _ key: String) async throws -> Reply {
        let port = cluster.node(id).clientPort
        return try await offload {
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            _ = try connection.readAfter(multibulk(["READONLY"]))
            return try connection.readAfter(multibulk(["GET", key]))
        }
    }

    @Test("a follower that missed compacted entries catches up by snapshot; a kill -9 while it receives one leaves it whole")
    func followerCatchesUpBySnapshot() async throws {
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000",
            "snapshot-entries": "100", "snapshot-chunk-bytes": "2048", "log-hold-entries-max": "0",
        ]
        try await withCluster(size: 3, settings: settings) { cluster, leader in
            let follower = cluster.ids.first { $0 != leader }!
            try await cluster.kill9(follower)
            try await Self.writeKeys(cluster, prefix: "a", count: 1500)
            let leaderInfo = try #require(await cluster.info(leader))
            let compacted = Int(leaderInfo["snapshot_index"] ?? "") ?? 0
            #expect(compacted > 1000, "the leader compacted its log: \(leaderInfo)")

            try cluster.start(follower)
            let commit = Int(leaderInfo["commit_index"] ?? "") ?? 0
            try await eventually("node \(follower) to apply \(commit)", diagnostics: { cluster.diagnostics() }) {
                Int(await cluster.info(follower)?["applied_index"] ?? "") ?? 0 >= commit
            }
            #expect(readFile(cluster.node(follower).logPath).contains("snapshot installed"))
            #expect(try await Self.localValue(cluster, follower, "a-1499") == .bulk("value-1499-" + String(repeating: "x", count: 64)))

            // Again, and this time kill the follower as soon as the transfer starts.
            try await cluster.kill9(follower)
            try await Self.writeKeys(cluster, prefix: "b", count: 1500)
            let logBefore = readFile(cluster.node(follower).logPath).components(separatedBy: "receiving snapshot").count
            try cluster.start(follower)
            try await eventually("node \(follower) to start receiving", diagnostics: { cluster.diagnostics() }) {
                readFile(cluster.node(follower).logPath).components(separatedBy: "receiving snapshot").count > logBefore
            }
            try await cluster.kill9(follower)
            let installedBeforeKill = readFile(cluster.node(follower).logPath).components(separatedBy: "snapshot installed").count - 1
            try cluster.start(follower)
            let target = Int(await cluster.info(leader)?["commit_index"] ?? "") ?? 0
            try await eventually("node \(follower) to apply \(target) after the kill", diagnostics: { cluster.diagnostics() }) {
                Int(await cluster.info(follower)?["applied_index"] ?? "") ?? 0 >= target
            }
            print("snapshot catch-up: installs logged before the mid-transfer kill: \(installedBeforeKill) (1 means the kill landed mid-transfer)")
            #expect(try await Self.localValue(cluster, follower, "b-1499") == .bulk("value-1499-" + String(repeating: "x", count: 64)))
            #expect(try await Self.localValue(cluster, follower, "a-0") == .bulk("value-0-" + String(repeating: "x", count: 64)))
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: cluster.node(follower).dataDirectory)) ?? []
            #expect(!entries.contains("state.sqlite.incoming"), "the partial file is gone: \(entries)")
        }
    }
}
