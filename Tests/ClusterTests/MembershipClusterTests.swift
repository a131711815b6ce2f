import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Changing the membership of running processes (README "Change the membership"): a node started
/// with `--join` is added as a learner, catches up (here by snapshot), is promoted, and then
/// replaces a node killed with `kill -9`. No acknowledged write is lost and fencing tokens keep
/// increasing throughout.
extension ClusterTests {
    /// Takes lock `name` with a new lease and releases it; returns the fencing token it got.
    static func fencingToken(_ client: KVClient, _ name: String) async throws -> Int64 {
        guard case .integer(let lease) = try await client.write(["LEASE", "GRANT", "30"]) else {
            throw TestFailure("LEASE GRANT did not return an id")
        }
        guard case .integer(let token) = try await client.request(["LOCK", name, "LEASE", String(lease)], idempotent: true) else {
            throw TestFailure("LOCK did not return a token")
        }
        _ = try await client.write(["UNLOCK", name, String(token)])
        return token
    }

    /// The row of `kvctl member list` for node `id`, split into columns.
    static func memberRow(_ cluster: Cluster, _ id: Int) async throws -> [String]? {
        let list = try await cluster.kvctl(["member", "list"])
        guard list.status == 0 else { return nil }
        return list.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.first { $0.first == String(id) }
    }

    @Test("grow 3 → 4 with --join, member add and promote; replace a kill -9'd node with member remove; no write lost")
    func growThenReplaceADeadNode() async throws {
        let settings: KeyValuePairs<String, String> = [
            "heartbeat-ms": "50", "election-timeout-ms": "1000", "request-timeout-ms": "5000",
            "snapshot-entries": "100", "log-hold-entries-max": "0",
        ]
        let cluster = try Cluster(size: 3, settings: settings, joiners: 1)
        defer { cluster.shutdown() }
        try cluster.startAll()
        try await cluster.waitForLeader()
        let client = cluster.client()
        defer { Task { await client.close() } }
        var acknowledged: [String: String] = [:]
        func write(_ prefix: String, _ count: Int) async throws {
            for index in 0..<count {
                let key = "\(prefix)-\(index)", value = "v\(index)"
                _ = try await client.write(["SET", key, value])
                acknowledged[key] = value
            }
        }
        var tokens = [try await Self.fencingToken(client, "mlock")]
        try await write("before", 300)

        // Node 4 starts with no membership and waits; the cluster refuses it until it is added.
        try cluster.startJoining(4)
        try await eventually("node 4 to say it is not a member yet", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            readFile(cluster.node(4).logPath).contains("is not added yet")
        }
        let four = cluster.node(4)
        let add = try await cluster.kvctl([
            "member", "add", "4", "--peer", "127.0.0.1:\(four.peerPort)", "--client", "127.0.0.1:\(four.clientPort)",
        ])
        #expect(add.status == 0, "member add: \(add)")
        // `--wait` retries while node 4 is still catching up (it is refused until then).
        let promote = try await cluster.kvctl(["member", "promote", "--wait", "--timeout", "60", "4"], timeout: .seconds(90))
        #expect(promote.status == 0, "member promote --wait: \(promote)")
        let row = try await Self.memberRow(cluster, 4)
        #expect(row?[4] == "voter", "member list row: \(row ?? [])")
        #expect(readFile(four.logPath).contains("snapshot installed"), "node 4 caught up from a snapshot")
        tokens.append(try await Self.fencingToken(client, "mlock"))
        try await write("grown", 100)
        try await eventually("node 4 to hold the writes", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            (try? await Self.localValue(cluster, 4, "grown-99")) == .bulk("v99")
        }
        #expect(try await Self.localValue(cluster, 4, "before-0") == .bulk("v0"))

        // Node 3's machine dies; it is replaced in the membership by removing it.
        try await cluster.kill9(3)
        let remove = try await cluster.kvctl(["member", "remove", "3"])
        #expect(remove.status == 0, "member remove: \(remove)")
        let survivors = [1, 2, 4]
        let leader = try await cluster.waitForLeader(among: survivors, timeout: .seconds(30))
        try await eventually("every survivor to see voters 1,2,4", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            let infos = await cluster.infos(survivors)
            return infos.count == 3 && infos.values.allSatisfy { $0["voters"] == "1,2,4" && $0["learners"] == "" }
        }
        #expect(try await Self.memberRow(cluster, 3) == nil, "node 3's addresses are gone")
        tokens.append(try await Self.fencingToken(client, "mlock"))
        try await write("after", 100)
        #expect(tokens == tokens.sorted() && Set(tokens).count == tokens.count, "fencing tokens increase: \(tokens)")

        // Every acknowledged write is there, on the leader and on the new node.
        for (key, value) in acknowledged {
            #expect(try await client.request(["GET", key], idempotent: true) == .bulkString(Array(value.utf8)), "\(key) via the leader")
        }
        try await eventually("node 4 to hold the last write", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            (try? await Self.localValue(cluster, 4, "after-99")) == .bulk("v99")
        }
        for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) where key.hasPrefix("before") {
            #expect(try await Self.localValue(cluster, 4, key) == .bulk(value), "\(key) on node 4")
        }
        let logs = readFile(cluster.node(leader).logPath)
        #expect(logs.contains("membership change committed and applied"), "the leader logs applied changes")

        // The removed node comes back (it never learnt of its removal): it is refused, says so,
        // and forces no election — PreVote keeps its term, and no member even hears it.
        let term = await cluster.info(leader)?["term"]
        try cluster.start(3)
        try await eventually("node 3 to say it is not a member", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            readFile(cluster.node(3).logPath).contains("does not count this node as a member")
        }
        await pause(cluster.electionTimeout * 4)
        #expect(try await cluster.waitForLeader(among: survivors) == leader, "the survivors keep their leader")
        #expect(await cluster.info(leader)?["term"] == term, "no term was bumped by the removed node")
        #expect(try await client.request(["GET", "after-99"], idempotent: true) == .bulkString(Array("v99".utf8)))

        // Node 1 restarts from its data with a cluster.conf that never named node 4: the
        // replicated addresses, not the file, tell it where node 4 is.
        try await cluster.kill9(1)
        _ = try await client.write(["SET", "restarted", "yes"])
        try cluster.start(1)
        try await eventually("node 1 to catch up through nodes 2 and 4", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
            (try? await Self.localValue(cluster, 1, "restarted")) == .bulk("yes")
        }
        #expect(await cluster.info(1)?["voters"] == "1,2,4")
        #expect(readFile(cluster.node(1).logPath).contains("peer 4 is a member; dialling it"))
    }
}

extension ClusterTests {
    @Test("kvctl member remove of the leader hands leadership over first; the removed node stays out")
    func removeTheLeader() async throws {
        let settings: KeyValuePairs<String, String> = ["heartbeat-ms": "50", "election-timeout-ms": "1000", "request-timeout-ms": "5000"]
        try await withCluster(size: 3, settings: settings) { cluster, leader in
            let client = cluster.client()
            defer { Task { await client.close() } }
            _ = try await client.write(["SET", "before", "1"])
            let remove = try await cluster.kvctl(["member", "remove", String(leader)])
            #expect(remove.status == 0, "member remove \(leader): \(remove)")
            let others = cluster.ids.filter { $0 != leader }
            let next = try await cluster.waitForLeader(among: others, timeout: .seconds(30))
            #expect(next != leader)
            let expected = others.map(String.init).joined(separator: ",")
            try await eventually("the others to see voters \(expected)", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
                let infos = await cluster.infos(others)
                return infos.count == 2 && infos.values.allSatisfy { $0["voters"] == expected }
            }
            #expect(readFile(cluster.node(next).logPath).contains("membership change proposed: remove node \(leader)"))
            try await eventually("the removed node to say it takes no part", timeout: .seconds(30), diagnostics: { cluster.diagnostics() }) {
                let log = readFile(cluster.node(leader).logPath)
                return log.contains("does not count this node as a member") || log.contains("this node was removed from the cluster")
            }
            let term = await cluster.info(next)?["term"]
            await pause(cluster.electionTimeout * 4)
            #expect(await cluster.info(next)?["term"] == term, "the removed node forced no election")
            _ = try await client.write(["SET", "after", "2"])
            #expect(try await client.request(["GET", "before"], idempotent: true) == .bulkString(Array("1".utf8)))
            let list = try await cluster.kvctl(["member", "list"])
            #expect(list.status == 0 && !list.stdout.contains("127.0.0.1:\(cluster.node(leader).clientPort)"), "\(list)")
        }
    }
}
