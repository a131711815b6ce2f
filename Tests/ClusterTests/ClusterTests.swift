import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real `kvd` processes on 127.0.0.1 (ports chosen free at run time), driven through `kvctl`,
/// `redis-cli` and raw sockets: the README's walkthrough and the contracts of docs/PROTOCOL.md and the README.
///
/// One suite, serialized: clusters never run side by side on a small machine. Every test kills
/// all the processes it started when it ends, also on failure (`withCluster`/`Cluster.shutdown`).
/// Waits are bounded polls with generous deadlines; tests assert outcomes, not speeds.
@Suite("kvd clusters of real processes", .serialized, .timeLimit(.minutes(3)))
struct ClusterTests {}

extension ClusterTests {
    @Test("put/get through every node, INFO fields, status --json shows exactly one leader", arguments: [3, 5])
    func putGetThroughEveryNode(size: Int) async throws {
        try await withCluster(size: size) { cluster, leader in
            // A write through each node: followers redirect kvctl to the leader.
            for id in cluster.ids {
                let put = try await cluster.kvctl(via: id, ["put", "key-\(id)", "value from node \(id)"])
                #expect(put.status == 0, "put via node \(id): \(put)")
                #expect(put.errorLines.isEmpty, "put via node \(id): \(put)")
            }
            // Every key read through every node (linearizable reads, redirected to the leader).
            for via in cluster.ids {
                for id in cluster.ids {
                    let get = try await cluster.kvctl(via: via, ["get", "key-\(id)"])
                    #expect(get.status == 0 && get.stdout == "value from node \(id)\n", "get key-\(id) via node \(via): \(get)")
                }
            }
            // A missing key: nothing on stdout, one line on stderr, non-zero exit.
            let missing = try await cluster.kvctl(via: cluster.ids.last!, ["get", "no-such-key"])
            #expect(missing.status != 0 && missing.stdout.isEmpty && missing.errorLines.count == 1, "\(missing)")

            // A connection that asked for redirects (CLIENT REDIRECT ON) gets -NOTLEADER <id>
            // <address> from a follower for a write and a linearizable read, as before forwarding.
            let follower = cluster.ids.first { $0 != leader }!
            let leaderAddress = cluster.node(leader).endpoint
            let followerPort = cluster.node(follower).clientPort
            let (redirectReply, setReply, getReply) = try await offload {
                let connection = try RawConnection(port: followerPort)
                defer { connection.close() }
                return (
                    try connection.readAfter(multibulk(["CLIENT", "REDIRECT", "ON"])),
                    try connection.readAfter(multibulk(["SET", "x", "y"])),
                    try connection.readAfter(multibulk(["GET", "key-1"]))
                )
            }
            #expect(redirectReply == .simple("OK"))
            #expect(setReply == .error("NOTLEADER \(leader) \(leaderAddress)"))
            #expect(getReply == .error("NOTLEADER \(leader) \(leaderAddress)"))

            // INFO on every node: every field of docs/PROTOCOL.md, and agreement once followers
            // have applied what the leader committed.
            let leaderCommit = try #require(await cluster.info(leader)?["commit_index"].flatMap { Int($0) })
            try await eventually("every node to apply index \(leaderCommit)", diagnostics: { cluster.diagnostics() }) {
                let infos = await cluster.infos()
                return infos.count == size && infos.values.allSatisfy { Int($0["applied_index"] ?? "") ?? 0 >= leaderCommit }
            }
            let infos = await cluster.infos()
            let voters = cluster.ids.map(String.init).joined(separator: ",")
            for id in cluster.ids {
                let info = try #require(infos[id], "node \(id) did not answer INFO")
                for field in [
                    "node_id", "role", "term", "leader_id", "leader_client", "commit_index", "applied_index",
                    "last_log_index", "snapshot_index", "cluster_id", "voters", "learners",
                ] {
                    #expect(info[field] != nil, "node \(id) INFO lacks \(field): \(info)")
                }
                #expect(info["node_id"] == String(id))
                #expect(info["role"] == (id == leader ? "leader" : "follower"), "node \(id): \(info)")
                #expect(info["term"] == infos[leader]?["term"], "node \(id): \(info)")
                #expect(info["leader_id"] == String(leader), "node \(id): \(info)")
                #expect(info["leader_client"] == leaderAddress, "node \(id): \(info)")
                #expect(info["cluster_id"] == cluster.clusterID)
                #expect(info["voters"] == voters, "node \(id): \(info)")
                #expect(info["learners"] == "", "node \(id): \(info)")
                for field in ["term", "commit_index", "applied_index", "last_log_index", "snapshot_index"] {
                    #expect(UInt64(info[field] ?? "") != nil, "node \(id) INFO \(field) is not a number: \(info)")
                }
                let applied = UInt64(info["applied_index"] ?? "") ?? 0
                let commit = UInt64(info["commit_index"] ?? "") ?? 0
                let last = UInt64(info["last_log_index"] ?? "") ?? 0
                #expect(applied <= commit && commit <= last, "node \(id): \(info)")
            }

            // kvctl status --json: parses, one object per node, exactly one leader.
            let status = try await cluster.kvctl(["status", "--json"])
            #expect(status.status == 0, "\(status)")
            let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8))
            let objects = try #require(json as? [[String: Any]], "status --json is not an array of objects: \(status.stdout)")
            #expect(objects.count == size)
            for (index, object) in objects.enumerated() {
                for key in ["id", "client", "role", "term", "leader", "commit_index", "applied_index"] {
                    #expect(object[key] != nil, "status --json object lacks \(key): \(object)")
                }
                #expect((object["id"] as? Int) == cluster.ids[index], "\(object)")
                #expect((object["client"] as? String) == cluster.nodes[index].endpoint, "\(object)")
                #expect((object["leader"] as? Int) == leader, "\(object)")
                #expect(object["term"] is Int && object["commit_index"] is Int && object["applied_index"] is Int, "\(object)")
            }
            let leaders = objects.filter { ($0["role"] as? String) == "leader" }
            #expect(leaders.count == 1, "\(status.stdout)")
            #expect((leaders.first?["id"] as? Int) == leader)
            #expect(objects.allSatisfy { ["leader", "follower"].contains($0["role"] as? String) }, "\(status.stdout)")

            // The table: a header and one row per node, naming the leader's role once.
            let table = try await cluster.kvctl(["status"])
            let rows = table.stdout.split(separator: "\n")
            #expect(table.status == 0 && rows.count == size + 1, "\(table)")
            #expect(rows.filter { $0.split(separator: " ").contains("leader") }.count == 1, "\(table)")
        }
    }

    @Test("kill -9 of the leader: a new leader, no acknowledged write lost, kvctl unchanged, the node catches up", arguments: [3, 5])
    func killLeader(size: Int) async throws {
        try await withCluster(size: size) { cluster, leader in
            // A writer that keeps writing through an exactly-once session while the leader dies.
            let client = cluster.client()
            let log = WriteLog()
            let writer = Task {
                var index = 0
                while !log.stopped {
                    let key = "w\(index)", value = "value-\(index)"
                    do {
                        let reply = try await client.write(["SET", key, value], timeout: .seconds(20))
                        if reply == .ok { log.acknowledged(key, value) } else { log.unexpected("SET \(key): \(reply)") }
                    } catch {
                        log.failed(key, value, error)
                    }
                    index += 1
                }
            }
            defer { writer.cancel() }
            // Some writes through kvctl too, acknowledged before the kill.
            for index in 0..<3 {
                let put = try await cluster.kvctl(["put", "before-\(index)", "kvctl-\(index)"])
                #expect(put.status == 0, "\(put)")
            }
            try await eventually("20 acknowledged writes before the kill") { log.count >= 20 }

            let before = await cluster.info(leader)
            let oldTerm = Int(before?["term"] ?? "") ?? 0
            try await cluster.kill9(leader)
            let acknowledgedAtKill = log.count
            let survivors = cluster.ids.filter { $0 != leader }
            let newLeader = try await cluster.waitForLeader(among: survivors)
            #expect(newLeader != leader)
            let newTerm = Int(await cluster.info(newLeader)?["term"] ?? "") ?? 0
            #expect(newTerm > oldTerm, "the new leader's term \(newTerm) should exceed \(oldTerm)")

            // Writes keep working: the writer goes on, and kvctl with the same configuration too.
            try await eventually("10 more acknowledged writes after the failover", timeout: .seconds(30)) {
                log.count >= acknowledgedAtKill + 10
            }
            // Five nodes survive a second loss: kill the new leader too, while the first is down.
            var killed = [leader]
            var currentLeader = newLeader
            if size == 5 {
                try await cluster.kill9(newLeader)
                killed.append(newLeader)
                let acknowledgedAtSecondKill = log.count
                currentLeader = try await cluster.waitForLeader(among: cluster.ids.filter { !killed.contains($0) })
                try await eventually("10 more acknowledged writes after the second failover", timeout: .seconds(30)) {
                    log.count >= acknowledgedAtSecondKill + 10
                }
            }
            let after = try await cluster.kvctl(["put", "after-failover", "still-works"])
            #expect(after.status == 0, "\(after)")
            log.stop()
            _ = await writer.value
            await client.close()
            #expect(log.unexpectedReplies.isEmpty, "\(log.unexpectedReplies)")

            // No acknowledged write lost: read them all back (linearizable reads at the new leader).
            let reader = cluster.client()
            let expected = log.acknowledgedWrites
            #expect(expected.count >= acknowledgedAtKill + 10)
            let values = try await mget(reader, expected.map(\.key))
            for (index, write) in expected.enumerated() where values[index] != write.value {
                Issue.record("acknowledged write \(write.key)=\(write.value) reads back as \(values[index] ?? "nil")")
            }
            // A write that failed indeterminately may or may not be there, but never with another value.
            let uncertain = log.failedWrites
            let uncertainValues = try await mget(reader, uncertain.map(\.key))
            for (index, write) in uncertain.enumerated() where uncertainValues[index] != nil && uncertainValues[index] != write.value {
                Issue.record("write \(write.key) reads back as \(uncertainValues[index] ?? "nil"), expected \(write.value) or nothing")
            }
            await reader.close()
            for index in 0..<3 {
                let get = try await cluster.kvctl(["get", "before-\(index)"])
                #expect(get.stdout == "kvctl-\(index)\n", "\(get)")
            }
            let get = try await cluster.kvctl(["get", "after-failover"])
            #expect(get.stdout == "still-works\n", "\(get)")

            // The killed nodes restart from their data directories and catch up as followers.
            for id in killed { try cluster.start(id) }
            let target = try #require(await cluster.info(currentLeader)?["applied_index"].flatMap { Int($0) })
            let keys = expected.map(\.key) + ["after-failover"]
            let wanted = Reply.array(expected.map { .bulk($0.value) } + [.bulk("still-works")])
            for id in killed {
                try await eventually("restarted node \(id) to apply index \(target)", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
                    guard let info = await cluster.info(id) else { return false }
                    return (Int(info["applied_index"] ?? "") ?? 0) >= target && info["role"] == "follower"
                        && (info["leader_id"] ?? "0") != "0"
                }
                // Its own state machine has every acknowledged write (a local, READONLY read).
                let port = cluster.node(id).clientPort
                let local = try await offload {
                    let connection = try RawConnection(port: port)
                    defer { connection.close() }
                    guard try connection.readAfter(multibulk(["READONLY"])) == .simple("OK") else { return Reply.error("READONLY refused") }
                    return try connection.readAfter(multibulk(["MGET"] + keys))
                }
                #expect(local == wanted, "restarted node \(id)'s local MGET differs from the acknowledged writes")
            }
            try await cluster.waitForLeader()
        }
    }

    @Test("SIGTERM of the leader hands leadership over before it exits", arguments: [3, 5])
    func gracefulHandOver(size: Int) async throws {
        // A long election timeout: without a hand-over no follower could win an election in the
        // half election timeout this test waits after the leader's exit.
        let settings: KeyValuePairs<String, String> = ["heartbeat-ms": "50", "election-timeout-ms": "1500"]
        try await withCluster(size: size, settings: settings) { cluster, leader in
            let put = try await cluster.kvctl(["put", "before-sigterm", "1"])
            #expect(put.status == 0, "\(put)")
            let oldTerm = Int(await cluster.info(leader)?["term"] ?? "") ?? 0

            let status = try await cluster.terminate(leader)
            #expect(status == 0, "kvd should exit 0 after SIGTERM")
            let exitedAt = ContinuousClock.now
            var successor: Int?
            var seen: [Int: [String: String]] = [:]
            while successor == nil && ContinuousClock.now - exitedAt < cluster.electionTimeout / 2 {
                seen = await cluster.infos(cluster.ids.filter { $0 != leader })
                successor = seen.first { $0.value["role"] == "leader" }?.key
            }
            let newLeader = try #require(successor, "no leader right after the old one exited: \(seen)\(cluster.diagnostics())")
            #expect(Int(seen[newLeader]?["term"] ?? "") ?? 0 > oldTerm)

            // The cluster serves as before, and the stopped node rejoins.
            let after = try await cluster.kvctl(["put", "after-sigterm", "2"])
            #expect(after.status == 0, "\(after)")
            try cluster.start(leader)
            try await cluster.waitForLeader()
            let get = try await cluster.kvctl(via: leader, ["get", "before-sigterm"])
            #expect(get.stdout == "1\n", "\(get)")
        }
    }
}

/// What a writer got acknowledged, and what failed (possibly applied), shared with the test.
final class WriteLog: @unchecked Sendable {
    struct Write: Sendable {
        var key: String
        var value: String
    }
    private let lock = NSLock()
    private var acked: [Write] = []
    private var failed: [Write] = []
    private var unexpectedList: [String] = []
    private var stopFlag = false

    func acknowledged(_ key: String, _ value: String) { lock.withLock { acked.append(Write(key: key, value: value)) } }
    func failed(_ key: String, _ value: String, _ error: any Error) {
        lock.withLock { failed.append(Write(key: key, value: value)) }
    }
    func unexpected(_ text: String) { lock.withLock { unexpectedList.append(text) } }
    func stop() { lock.withLock { stopFlag = true } }
    var stopped: Bool { lock.withLock { stopFlag } }
    var count: Int { lock.withLock { acked.count } }
    var acknowledgedWrites: [Write] { lock.withLock { acked } }
    var failedWrites: [Write] { lock.withLock { failed } }
    var unexpectedReplies: [String] { lock.withLock { unexpectedList } }
}

/// `MGET keys` at the leader (in chunks), as optional strings.
func mget(_ client: KVClient, _ keys: [String]) async throws -> [String?] {
    var values: [String?] = []
    var offset = 0
    while offset < keys.count {
        let chunk = Array(keys[offset..<min(keys.count, offset + 500)])
        let reply = try await client.request(["MGET"] + chunk, idempotent: true, timeout: .seconds(20))
        guard case .array(let items) = reply, items.count == chunk.count else {
            throw TestFailure("MGET answered \(reply)")
        }
        values += items.map { $0.text }
        offset += chunk.count
    }
    return values
}

extension RawConnection {
    /// Sends `bytes` and reads one reply.
    func readAfter(_ bytes: [UInt8]) throws -> Reply {
        send(bytes)
        return try readReply()
    }
}
