import Glibc
import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// The three node lines most tests start from.
private let threeNodes = """
    node 1 peer=127.0.0.1:7101 client=127.0.0.1:7001 metrics=127.0.0.1:7201
    node 2 peer=127.0.0.1:7102 client=127.0.0.1:7002 metrics=127.0.0.1:7202
    node 3 peer=127.0.0.1:7103 client=127.0.0.1:7003
    """

private func parse(_ text: String) throws(ConfigError) -> ClusterConfig {
    try ClusterConfig.parse(text, file: "cluster.conf")
}

/// The repository root, found from this file's path (Tests/KVDaemonTests/<file>).
func repositoryRoot(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}

@Suite struct ClusterConfigTests {
    @Test("a minimal file gets every default, and the derived lease minimum follows the election timeout")
    func defaults() throws {
        let config = try parse(threeNodes)
        #expect(config.clusterID == "kvd")
        #expect(config.nodeIDs == [1, 2, 3])
        #expect(config.settings.heartbeatMillis == 50)
        #expect(config.settings.electionTimeoutMillis == 500)
        #expect(config.settings.leaseMinTTLMillis == 1000)
        #expect(config.settings.leaseCheckpointMillis == 5000)
        #expect(config.node(3)?.metrics == nil)
        #expect(config.node(1)?.peer == HostPort(host: "127.0.0.1", port: 7101))
        #expect(config.node(2)?.line == 2)
        let derived = try parse("election-timeout-ms 800\n" + threeNodes)
        #expect(derived.settings.leaseMinTTLMillis == 1600)
    }

    @Test("a node line with client-tls= and no client= serves clients over TLS only, at that address")
    func tlsOnlyNode() throws {
        let config = try ClusterConfig.parse(
            "node 1 peer=h:1 client-tls=h:2\nnode 2 peer=h:3 client=h:4 client-tls=h:5\n", file: "cluster.conf")
        let one = try #require(config.node(1)), two = try #require(config.node(2))
        #expect(one.client == HostPort(host: "h", port: 2) && one.clientTLS == one.client && !one.servesPlainClients)
        #expect(two.client == HostPort(host: "h", port: 4) && two.clientTLS == HostPort(host: "h", port: 5) && two.servesPlainClients)
    }

    @Test("comments, blank lines, tabs and CRLF line ends are accepted; nodes come back sorted by id")
    func layout() throws {
        let text = "# header\r\n\r\ncluster-id  demo   # trailing comment\r\n\tnode 9 client=h:2 peer=h:1\r\nnode 4 peer=[::1]:3 client=h:4\r\n"
        let config = try parse(text)
        #expect(config.clusterID == "demo")
        #expect(config.nodeIDs == [4, 9])
        #expect(config.node(4)?.peer.host == "::1")
        #expect(config.node(4)?.peer.description == "[::1]:3")
    }

    @Test("the example files at the repository root parse: 3 and 5 nodes on the documented ports")
    func examples() throws {
        let three = try ClusterConfig.load(path: repositoryRoot() + "/cluster.conf.example")
        #expect(three.clusterID == "demo")
        #expect(three.nodes.map(\.peer.port) == [7101, 7102, 7103])
        #expect(three.nodes.map(\.client.port) == [7001, 7002, 7003])
        #expect(three.nodes.compactMap(\.metrics?.port) == [7201, 7202, 7203])
        let five = try ClusterConfig.load(path: repositoryRoot() + "/cluster5.conf.example")
        #expect(five.nodes.map(\.client.port) == [7001, 7002, 7003, 7004, 7005])
        #expect(five.nodes.map(\.peer.port) == [7101, 7102, 7103, 7104, 7105])
        #expect(five.membership.quorum == 3)
    }

    @Test("settings map onto RaftConfiguration in ticks of heartbeat-ms, and onto KVLimits")
    func mapping() throws {
        let text = """
            heartbeat-ms 20
            election-timeout-ms 150
            append-entries-max 32
            append-bytes-max 65536
            inflight-messages-max 8
            uncommitted-bytes-max 1000000
            snapshot-chunk-bytes 4096
            key-bytes-max 100
            value-bytes-max 2000
            sessions-max 7
            session-timeout-ms 5000
            lease-min-ttl-ms 400
            lease-checkpoint-ms 2500
            request-timeout-ms 700
            """ + "\n" + threeNodes
        let config = try parse(text)
        let raft = config.raftConfiguration(for: 2)
        #expect(raft.id == 2)
        #expect(raft.heartbeatIntervalTicks == 1)
        #expect(raft.electionTimeoutTicks == 7)  // 150 / 20, rounded down
        #expect(raft.entriesPerAppendMax == 32)
        #expect(raft.bytesPerAppendMax == 65536)
        #expect(raft.inflightMessagesMax == 8)
        #expect(raft.uncommittedBytesMax == 1_000_000)
        #expect(raft.snapshotChunkBytes == 4096)
        try raft.validate()
        #expect(config.tickMillis == 20)
        let limits = config.kvLimits
        #expect(limits.keyBytesMax == 100)
        #expect(limits.valueBytesMax == 2000)
        #expect(limits.sessionsMax == 7)
        #expect(limits.sessionTimeoutMillis == 5000)
        #expect(limits.leaseTTLMillisMin == 400)
        #expect(config.membership == ClusterMembership(voters: [1, 2, 3]))
        let driver = config.driverSettings
        #expect(driver.leaseCheckpointMillis == 2500)
        #expect(driver.electionTimeoutMillis == 150)
        #expect(driver.heartbeatMillis == 20)
        #expect(driver.requestTimeoutMillis == 700)
        #expect(driver.clientAddresses[3] == "127.0.0.1:7003")
    }

    @Test("the defaults map onto RaftCore and KVStore defaults where those exist")
    func defaultsAgreeWithLibraries() throws {
        let config = try parse(threeNodes)
        let raft = config.raftConfiguration(for: 1)
        let core = RaftConfiguration(id: 1)
        #expect(raft.entriesPerAppendMax == core.entriesPerAppendMax)
        #expect(raft.bytesPerAppendMax == core.bytesPerAppendMax)
        #expect(raft.inflightMessagesMax == core.inflightMessagesMax)
        #expect(raft.uncommittedBytesMax == core.uncommittedBytesMax)
        #expect(raft.snapshotChunkBytes == core.snapshotChunkBytes)
        #expect(raft.electionTimeoutTicks == 10)
        #expect(config.kvLimits == KVLimits())
        let driver = RaftDriver.Settings(clientAddresses: [:], clusterID: "kvd")
        #expect(config.driverSettings.leaseCheckpointMillis == driver.leaseCheckpointMillis)
        #expect(config.driverSettings.electionTimeoutMillis == driver.electionTimeoutMillis)
    }

    @Test("lease-checkpoint-ms may equal the election timeout, its lower edge")
    func leaseCheckpointEdge() throws {
        let config = try parse("election-timeout-ms 700\nlease-checkpoint-ms 700\n" + threeNodes)
        #expect(config.driverSettings.leaseCheckpointMillis == 700)
    }

    @Test("requireNode names the defined ids when --id is unknown")
    func unknownID() throws {
        let config = try parse(threeNodes)
        #expect(throws: ConfigError(file: "cluster.conf", line: nil, message: "node 4 is not defined (nodes: 1, 2, 3)")) {
            try config.requireNode(4)
        }
        #expect(try config.requireNode(3).client.port == 7003)
    }

    @Test(
        "every error names the file, the line and the problem on one line",
        arguments: [
            ("heartbeat 50\n" + threeNodes, "cluster.conf:1: unknown setting 'heartbeat' (did you mean 'heartbeat-ms'?)"),
            ("\n\nfoo 1\n" + threeNodes, "cluster.conf:3: unknown setting 'foo'"),
            ("heartbeat-ms 20\nheartbeat-ms 30\n" + threeNodes, "cluster.conf:2: duplicate setting 'heartbeat-ms' (first set on line 1)"),
            ("heartbeat-ms\n" + threeNodes, "cluster.conf:1: setting 'heartbeat-ms' needs exactly one value, found 0"),
            ("heartbeat-ms 5 0\n" + threeNodes, "cluster.conf:1: setting 'heartbeat-ms' needs exactly one value, found 2"),
            ("heartbeat-ms fast\n" + threeNodes, "cluster.conf:1: value 'fast' of 'heartbeat-ms' is not a whole number"),
            ("heartbeat-ms -5\n" + threeNodes, "cluster.conf:1: value '-5' of 'heartbeat-ms' is not a whole number"),
            ("heartbeat-ms 99999999999999999999999\n" + threeNodes, "cluster.conf:1: value '99999999999999999999999' of 'heartbeat-ms' is not a whole number"),
            ("heartbeat-ms 0\n" + threeNodes, "cluster.conf:1: heartbeat-ms 0 is out of range 1...60000"),
            ("key-bytes-max 70000\n" + threeNodes, "cluster.conf:1: key-bytes-max 70000 is out of range 1...65536"),
            ("cluster-id a/b\n" + threeNodes, "cluster.conf:1: cluster-id 'a/b' must be 1 to 64 of A-Z a-z 0-9 . _ -"),
            ("# c\nheartbeat-ms 50\nelection-timeout-ms 200\n" + threeNodes, "cluster.conf:3: election-timeout-ms 200 must be at least 5 × heartbeat-ms (250)"),
            ("election-timeout-ms 300\nheartbeat-ms 100\n" + threeNodes, "cluster.conf:2: election-timeout-ms 300 must be at least 5 × heartbeat-ms (500)"),
            ("lease-min-ttl-ms 100\n" + threeNodes, "cluster.conf:1: lease-min-ttl-ms 100 must be at least election-timeout-ms (500)"),
            ("lease-checkpoint-ms 499\n" + threeNodes, "cluster.conf:1: lease-checkpoint-ms 499 must be at least election-timeout-ms (500)"),
            ("lease-checkpoint-ms 800\nelection-timeout-ms 900\n" + threeNodes,
                "cluster.conf:2: lease-checkpoint-ms 800 must be at least election-timeout-ms (900)"),
            ("lease-checkpoint-ms 3600001\n" + threeNodes, "cluster.conf:1: lease-checkpoint-ms 3600001 is out of range 5...3600000"),
            ("value-bytes-max 4000000\n" + threeNodes, "cluster.conf:1: request-bytes-max 2097152 must be at least key-bytes-max + value-bytes-max (4001024)"),
            ("peer-frame-bytes-max 1000000\n" + threeNodes, "cluster.conf:1: peer-frame-bytes-max 1000000 must be at least max(append-bytes-max, request-bytes-max, snapshot-chunk-bytes) + 131072 (2228224)"),
            ("peer-queue-bytes-max 1000\n" + threeNodes, "cluster.conf:1: peer-queue-bytes-max 1000 must be at least peer-frame-bytes-max (16777216)"),
            ("peer-reconnect-min-ms 500\npeer-reconnect-max-ms 100\n" + threeNodes, "cluster.conf:2: peer-reconnect-max-ms 100 is below peer-reconnect-min-ms (500)"),
            (threeNodes + "\nnode 2 peer=h:1 client=h:2", "cluster.conf:4: duplicate node id 2 (first defined on line 2)"),
            ("node 0 peer=h:1 client=h:2", "cluster.conf:1: node id '0' is not a positive integer"),
            ("node -1 peer=h:1 client=h:2", "cluster.conf:1: node id '-1' is not a positive integer"),
            ("node x peer=h:1 client=h:2", "cluster.conf:1: node id 'x' is not a positive integer"),
            ("node", "cluster.conf:1: node line needs an id"),
            ("node 1 peer=h:1 client=h:1", "cluster.conf:1: duplicate address h:1 (already used on line 1)"),
            (threeNodes + "\nnode 4 peer=127.0.0.1:7001 client=h:2", "cluster.conf:4: duplicate address 127.0.0.1:7001 (already used on line 1)"),
            ("node 1 peer=h client=h:2", "cluster.conf:1: malformed peer address 'h' (expected host:port with port 1-65535)"),
            ("node 1 peer=h:0 client=h:2", "cluster.conf:1: malformed peer address 'h:0' (expected host:port with port 1-65535)"),
            ("node 1 peer=h:65536 client=h:2", "cluster.conf:1: malformed peer address 'h:65536' (expected host:port with port 1-65535)"),
            ("node 1 peer=:80 client=h:2", "cluster.conf:1: malformed peer address ':80' (expected host:port with port 1-65535)"),
            ("node 1 peer=::1:80 client=h:2", "cluster.conf:1: malformed peer address '::1:80' (expected host:port with port 1-65535)"),
            ("node 1 peer=h:1 client=h:x2", "cluster.conf:1: malformed client address 'h:x2' (expected host:port with port 1-65535)"),
            ("node 1 peer=h:1 client=h:2 admin=h:3", "cluster.conf:1: unknown node key 'admin' (expected peer, client, client-tls or metrics)"),
            ("node 1 peer=h:1 client=h:2 h:3", "cluster.conf:1: expected key=host:port, found 'h:3'"),
            ("node 1 peer=h:1 peer=h:3 client=h:2", "cluster.conf:1: duplicate 'peer' address for node 1"),
            ("node 1 client=h:2", "cluster.conf:1: node 1 needs a peer=host:port address"),
            ("node 1 peer=h:2", "cluster.conf:1: node 1 needs a client=host:port address (or client-tls=host:port, to serve clients over TLS only)"),
            ("# nothing\ncluster-id demo\n", "cluster.conf: defines no nodes (expected lines 'node <id> peer=host:port client=host:port')"),
        ])
    func errors(text: String, expected: String) {
        do {
            let config = try parse(text)
            Issue.record("parsed without error: \(config)")
        } catch {
            #expect(error.description == expected)
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("a missing file is one clear line naming the path")
    func missingFile() {
        #expect(throws: ConfigError(file: "/nonexistent/cluster.conf", line: nil, message: "cannot open: No such file or directory")) {
            try ClusterConfig.load(path: "/nonexistent/cluster.conf")
        }
    }

    @Test("docs/CONFIGURATION.md carries the same settings table as the /// docs, with the real defaults")
    func documentation() throws {
        let root = repositoryRoot()
        let markdown = try readTextFile(path: root + "/docs/CONFIGURATION.md", bytesMax: 1 << 20)
        let source = try readTextFile(path: root + "/Sources/KVDaemon/ClusterConfig+Settings.swift", bytesMax: 1 << 20)
        let rows = source.split(separator: "\n").filter { $0.hasPrefix("/// |") }.map { $0.dropFirst(4) }
        #expect(rows.count == ClusterSettings.names.count + 2)
        for row in rows { #expect(markdown.contains(row), "docs/CONFIGURATION.md lacks: \(row)") }
        let defaults = ClusterSettings()
        for setting in IntegerSetting.all {
            let row = rows.first { $0.hasPrefix("| `\(setting.name)` |") }
            let cells = row?.split(separator: "|").map { $0.trimmingCharacters(in: " ") }
            guard let cells, cells.count >= 2 else {
                Issue.record("no documentation row for \(setting.name)")
                continue
            }
            if let documented = Int(cells[1]) {
                #expect(documented == defaults[keyPath: setting.keyPath], "default of \(setting.name)")
            }
            #expect(setting.range.contains(defaults[keyPath: setting.keyPath]), "default of \(setting.name) in range")
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var result = self
        while let first = result.first, set.contains(first) { result.removeFirst() }
        while let last = result.last, set.contains(last) { result.removeLast() }
        return result
    }
}
