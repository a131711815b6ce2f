import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    /// Grants a lease and takes lock `name` with it through `client`; returns the fencing token.
    static func takeLock(_ client: KVClient, _ name: String) async throws -> Int64 {
        guard case .integer(let lease) = try await client.write(["LEASE", "GRANT", "60"]) else { throw TestFailure("no lease") }
        guard case .integer(let token) = try await client.write(["LOCK", name, "LEASE", String(lease)]) else {
            throw TestFailure("no lock")
        }
        return token
    }

    @Test("snapshot save streams a checked backup; a new 3-node cluster restored from it has every key and grants higher tokens")
    func backupAndRestore() async throws {
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000", "snapshot-chunk-bytes": "4096",
        ]
        try await withCluster(size: 3, settings: settings) { cluster, _ in
            try await Self.writeKeys(cluster, prefix: "k", count: 400)
            let client = cluster.client()
            let oldToken = try await Self.takeLock(client, "job")
            await client.close()

            let backup = cluster.directory + "/backup.kvd"
            let save = try await cluster.kvctl(["snapshot", "save", backup])
            #expect(save.status == 0, "\(save)")
            #expect(save.stdout.contains("saved \(backup): cluster ctest"), "\(save)")
            let status = try await runCommand(Tools.kvctl, ["snapshot", "status", backup])
            #expect(status.status == 0, "\(status)")
            for line in ["cluster_id: ctest", "keys: 400", "leases: 1", "locks: 1", "voters: 1,2,3"] {
                #expect(status.stdout.contains(line), "status shows \(line): \(status)")
            }
            let appliedIndex = Int64(status.stdout.split(separator: "\n").first { $0.hasPrefix("applied_index: ") }?.dropFirst(15) ?? "") ?? 0
            #expect(appliedIndex >= oldToken, "every token granted before the backup is at most its index")

            // A truncated copy: a clear error, a non-zero exit.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: backup))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: backup + ".cut"))
            let cut = try await runCommand(Tools.kvctl, ["snapshot", "status", backup + ".cut"])
            #expect(cut.status == 1 && cut.errorLines.count == 1 && cut.stderr.contains("truncated"), "\(cut)")

            // The backup's own cluster id is refused.
            let same = try await runCommand(
                Tools.kvd, ["--config", cluster.configPath, "--id", "1", "--restore-from", backup, "--data-dir", cluster.directory + "/same"])
            #expect(same.status != 0 && same.errorLines.count == 1 && same.stderr.contains("cluster-id"), "\(same)")

            // A new cluster (other ports, data directories and cluster id), every node restored.
            let restored = try Cluster(size: 3, clusterID: "restored", settings: settings)
            defer { restored.shutdown() }
            for node in restored.nodes {
                let result = try await runCommand(
                    Tools.kvd,
                    ["--config", restored.configPath, "--id", String(node.id), "--restore-from", backup, "--data-dir", node.dataDirectory])
                #expect(result.status == 0, "restore of node \(node.id): \(result)")
            }
            let again = try await runCommand(
                Tools.kvd, ["--config", restored.configPath, "--id", "1", "--restore-from", backup, "--data-dir", restored.node(1).dataDirectory])
            #expect(again.status != 0 && again.stderr.contains("already exists"), "a restore never overwrites: \(again)")
            try restored.startAll()
            try await restored.waitForLeader()
            let newClient = restored.client()
            for index in 0..<400 {
                let value = try await newClient.request(["GET", "k-\(index)"], idempotent: true)
                #expect(value == .bulkString("value-\(index)-" + String(repeating: "x", count: 64)), "k-\(index)")
            }
            let newToken = try await Self.takeLock(newClient, "job")
            #expect(newToken > oldToken, "a lock granted after the restore has a higher token: \(newToken) vs \(oldToken)")
            #expect(newToken > appliedIndex)
            await newClient.close()
        }
    }
}

extension ClusterTests {
    @Test("SNAPSHOT on the wire: leader only, at most two at once, chunks in order, a repeat is the same bytes")
    func backupProtocolBounds() async throws {
        try await withCluster(size: 3) { cluster, leader in
            try await Self.writeKeys(cluster, prefix: "b", count: 50)
            let follower = try #require(cluster.ids.first { $0 != leader })
            let leaderPort = cluster.node(leader).clientPort, followerPort = cluster.node(follower).clientPort
            try await offload {
                let other = try RawConnection(port: followerPort)
                defer { other.close() }
                let refused = try other.readAfter(multibulk(["SNAPSHOT", "BEGIN"]))
                #expect(refused.errorText?.hasPrefix("NOTLEADER \(leader) ") == true, "a follower redirects: \(refused)")

                let connection = try RawConnection(port: leaderPort)
                defer { connection.close() }
                var ids: [Int64] = []
                for _ in 0..<2 {
                    guard case .array(let fields?) = try connection.readAfter(multibulk(["SNAPSHOT", "BEGIN"])),
                        case .integer(let id) = fields.first, case .bulk(let header?) = fields.last
                    else { throw TestFailure("BEGIN did not start a backup") }
                    #expect(String(decoding: header, as: UTF8.self).contains("cluster-id ctest\n"))
                    ids.append(id)
                }
                let third = try connection.readAfter(multibulk(["SNAPSHOT", "BEGIN"]))
                #expect(third.errorText?.hasPrefix("UNAVAILABLE") == true, "a third backup waits: \(third)")

                let id = String(ids[0])
                let skipped = try connection.readAfter(multibulk(["SNAPSHOT", "CHUNK", id, "1"]))
                #expect(skipped.errorText?.hasPrefix("ERR") == true, "chunks come in order: \(skipped)")
                let first = try connection.readAfter(multibulk(["SNAPSHOT", "CHUNK", id, "0"]))
                let repeated = try connection.readAfter(multibulk(["SNAPSHOT", "CHUNK", id, "0"]))
                #expect(first == repeated, "a repeated request gets the same chunk")
                guard case .array(let fields?) = first, fields.count == 3, case .bulk(let bytes?) = fields[1] else {
                    throw TestFailure("bad CHUNK reply \(first)")
                }
                #expect(bytes.count > 13, "the chunk holds rows")

                #expect(try connection.readAfter(multibulk(["SNAPSHOT", "END", String(ids[1])])) == .simple("OK"))
                guard case .array = try connection.readAfter(multibulk(["SNAPSHOT", "BEGIN"])) else {
                    throw TestFailure("END did not free a place")
                }
                let gone = try connection.readAfter(multibulk(["SNAPSHOT", "CHUNK", String(ids[1]), "0"]))
                #expect(gone.errorText?.contains("no backup") == true, "\(gone)")
            }
        }
    }
}
