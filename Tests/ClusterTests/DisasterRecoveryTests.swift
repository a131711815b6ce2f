import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    @Test("force-new-cluster: the last survivor of three becomes a one-node cluster with its data, and tokens go forward")
    func forceNewCluster() async throws {
        try await withCluster(size: 3) { cluster, leader in
            try await Self.writeKeys(cluster, prefix: "f", count: 100)
            let client = cluster.client()
            let oldToken = try await Self.takeLock(client, "job")
            await client.close()
            let survivor = try #require(cluster.ids.first { $0 != leader })
            let commit = Int(await cluster.info(leader)?["commit_index"] ?? "") ?? 0
            try await eventually("node \(survivor) to apply \(commit)", diagnostics: { cluster.diagnostics() }) {
                Int(await cluster.info(survivor)?["applied_index"] ?? "") ?? 0 >= commit
            }
            for id in cluster.ids { try await cluster.kill9(id) }

            // With the full configuration: without the flag the survivor could never win an election.
            let node = cluster.node(survivor)
            let forced = try cluster.spawn(
                Tools.kvd,
                ["--config", cluster.configPath, "--id", String(survivor), "--data-dir", node.dataDirectory, "--force-new-cluster"],
                stdout: node.logPath, stderr: node.logPath)
            try await eventually("node \(survivor) to lead alone", diagnostics: { cluster.diagnostics() }) {
                await cluster.info(survivor)?["role"] == "leader"
            }
            #expect(readFile(node.logPath).contains("warning"), "the rewrite is logged at warning level")
            #expect(readFile(node.logPath).contains("ONE-NODE cluster"))
            let read = try await cluster.kvctl(via: survivor, ["get", "f-99"])
            #expect(read.status == 0 && read.output == "value-99-" + String(repeating: "x", count: 64), "\(read)")
            let write = try await cluster.kvctl(via: survivor, ["put", "after", "force"])
            #expect(write.status == 0, "\(write)")
            let check = try await cluster.kvctl(via: survivor, ["get", "after"])
            #expect(check.output == "force", "\(check)")
            let survivorClient = KVClient(configuration: KVClient.Configuration(endpoints: [cluster.endpoints[survivor - 1]]))
            let newToken = try await Self.takeLock(survivorClient, "other")
            #expect(newToken > oldToken, "tokens go forward: \(newToken) vs \(oldToken)")
            await survivorClient.close()

            // As the runbook says, its configuration then keeps only its own node line; later
            // starts need no flag.
            forced.signal(SIGTERM)
            _ = try await forced.wait(timeout: .seconds(20))
            let alone = cluster.directory + "/alone.conf"
            let lines = readFile(cluster.configPath).split(separator: "\n").filter { !$0.hasPrefix("node ") || $0.hasPrefix("node \(survivor) ") }
            try writeFile(alone, lines.joined(separator: "\n") + "\n")
            _ = try cluster.spawn(
                Tools.kvd, ["--config", alone, "--id", String(survivor), "--data-dir", node.dataDirectory],
                stdout: node.logPath, stderr: node.logPath)
            try await eventually("node \(survivor) to lead alone again", diagnostics: { cluster.diagnostics() }) {
                await cluster.info(survivor)?["role"] == "leader"
            }
            let after = try await cluster.kvctl(via: survivor, ["get", "after"])
            #expect(after.output == "force", "\(after)")

            // Then members are added back (README "Change the membership"): a lost node's id on
            // an empty data directory joins, is added as a learner and promoted, and holds the data.
            let back = try #require(cluster.ids.first { $0 != survivor })
            let backNode = cluster.node(back)
            _ = try cluster.spawn(
                Tools.kvd,
                ["--config", cluster.configPath, "--id", String(back), "--data-dir", backNode.dataDirectory + "-new", "--join"],
                stdout: backNode.logPath, stderr: backNode.logPath)
            let add = try await cluster.kvctl(
                via: survivor,
                ["member", "add", String(back), "--peer", "127.0.0.1:\(backNode.peerPort)", "--client", "127.0.0.1:\(backNode.clientPort)"])
            #expect(add.status == 0, "\(add)")
            try await eventually("node \(back) to be promoted", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
                (try? await cluster.kvctl(via: survivor, ["member", "promote", String(back)]))?.status == 0
            }
            let port = backNode.clientPort
            try await eventually("node \(back) to hold the data", diagnostics: { cluster.diagnostics() }) {
                let reply = try? await offload {
                    let connection = try RawConnection(port: port)
                    defer { connection.close() }
                    _ = try connection.roundTrip("READONLY\r\n")
                    return try connection.roundTrip("GET after\r\n")
                }
                return reply == .bulk("force")
            }
            let members = try await cluster.kvctl(via: survivor, ["member", "list"])
            #expect(members.output.split(separator: "\n").filter { $0.contains("voter") }.count == 2, "\(members)")
        }
    }
}
