public import KVStore
public import RaftCore

/// The whole cluster as described by `cluster.conf`: the same file on every node.
///
/// ```
/// # comment
/// cluster-id demo
/// heartbeat-ms 50
/// node 1 peer=127.0.0.1:7101 client=127.0.0.1:7001 metrics=127.0.0.1:7201
/// ```
///
/// Build one with `ClusterConfig.load(path:)` or `ClusterConfig.parse(_:file:)`; both validate
/// everything (see `ClusterSettings` for the settings, their defaults and ranges) and throw a
/// `ConfigError` that names the file and line. A value of this type is therefore always valid.
public struct ClusterConfig: Hashable, Sendable {
    /// The cluster's name, carried in every peer handshake so that nodes of different clusters
    /// never talk to each other, and recorded in each data directory.
    public var clusterID: String { settings.clusterID }
    /// Every node, in increasing id order.
    public let nodes: [ClusterNode]
    /// Every tunable, defaults filled in.
    public let settings: ClusterSettings
    /// The file the configuration came from, as given (used in error messages).
    public let file: String

    init(nodes: [ClusterNode], settings: ClusterSettings, file: String) {
        self.nodes = nodes.sorted { $0.id < $1.id }
        self.settings = settings
        self.file = file
    }

    /// The node with `id`, if the file defines one.
    public func node(_ id: NodeID) -> ClusterNode? {
        nodes.first { $0.id == id }
    }

    /// The node with `id`, or an error naming the file and the ids it does define (for `--id`).
    public func requireNode(_ id: NodeID) throws(ConfigError) -> ClusterNode {
        guard let node = node(id) else {
            let known = nodes.map(\.id.description).joined(separator: ", ")
            throw ConfigError(file: file, line: nil, message: "node \(id) is not defined (nodes: \(known))")
        }
        return node
    }

    /// Every node's id.
    public var nodeIDs: [NodeID] { nodes.map(\.id) }

    /// The initial membership: every configured node is a voter.
    public var membership: ClusterMembership { ClusterMembership(voters: Set(nodeIDs)) }

    /// The RaftCore tunables for node `id`. One tick is `heartbeat-ms`, so the heartbeat interval is
    /// one tick and `electionTimeoutTicks` is `election-timeout-ms / heartbeat-ms` (at least 5,
    /// which `election-timeout-ms ≥ 5 × heartbeat-ms` guarantees).
    public func raftConfiguration(for id: NodeID) -> RaftConfiguration {
        var raft = RaftConfiguration(id: id)
        raft.heartbeatIntervalTicks = 1
        raft.electionTimeoutTicks = settings.electionTimeoutMillis / settings.heartbeatMillis
        raft.entriesPerAppendMax = settings.appendEntriesMax
        raft.bytesPerAppendMax = settings.appendBytesMax
        raft.inflightMessagesMax = settings.inflightMessagesMax
        raft.uncommittedBytesMax = settings.uncommittedBytesMax
        raft.snapshotChunkBytes = settings.snapshotChunkBytes
        raft.applyEntriesPerReadyMax = settings.applyEntriesMax
        raft.pendingReadsMax = settings.pendingReadsMax
        raft.compactionHoldEntriesMax = settings.logHoldEntriesMax
        return raft
    }

    /// How long one RaftCore tick lasts, in milliseconds (`heartbeat-ms`).
    public var tickMillis: Int { settings.heartbeatMillis }

    /// The state-machine limits. Every replica must use the same values, which is one reason the
    /// same `cluster.conf` is shared by all nodes.
    public var kvLimits: KVLimits {
        var limits = KVLimits()
        limits.keyBytesMax = settings.keyBytesMax
        limits.valueBytesMax = settings.valueBytesMax
        limits.leaseTTLMillisMin = UInt64(settings.leaseMinTTLMillis)
        limits.leaseTTLMillisMax = UInt64(settings.leaseMaxTTLMillis)
        limits.leasesMax = settings.leasesMax
        limits.lockWaitersMax = settings.lockWaitersMax
        limits.sessionsMax = settings.sessionsMax
        limits.sessionTimeoutMillis = UInt64(settings.sessionTimeoutMillis)
        limits.listLimitMax = settings.listKeysMax
        limits.replyBytesMax = settings.clientReplyBytesMax
        return limits
    }

    /// What the Raft driver needs beyond Raft itself: every node's client address (for
    /// `-NOTLEADER` redirects), request and lock-wait limits, the snapshot interval, and the times
    /// its lease clock works from.
    public var driverSettings: RaftDriver.Settings {
        var driver = RaftDriver.Settings(
            clientAddresses: Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0.client.description) }),
            clusterID: clusterID)
        driver.bootstrapMembers = nodes.map {
            MemberAddresses(
                id: $0.id.rawValue, peer: $0.peer.description, client: $0.client.description, metrics: $0.metrics?.description,
                clusterID: settings.clusterID)
        }
        driver.requestTimeoutMillis = UInt64(settings.requestTimeoutMillis)
        driver.lockWaitMaxMillis = UInt64(settings.lockWaitMaxMillis)
        driver.snapshotEntries = UInt64(settings.snapshotEntries)
        driver.snapshotTransfersMax = settings.snapshotTransfersMax
        driver.heartbeatMillis = UInt64(settings.heartbeatMillis)
        driver.electionTimeoutMillis = UInt64(settings.electionTimeoutMillis)
        driver.leaseCheckpointMillis = UInt64(settings.leaseCheckpointMillis)
        driver.forwardsToLeader = settings.forwardToLeader == 1
        driver.forwardedWritesMax = settings.forwardedWritesMax
        return driver
    }
}

/// One `node` line: a server's id and the addresses it listens on.
public struct ClusterNode: Hashable, Sendable {
    /// The server's Raft id (a positive integer).
    public let id: NodeID
    /// Where other nodes connect for Raft traffic.
    public let peer: HostPort
    /// Where clients connect (RESP2): the plain address, or the TLS one if the node serves
    /// clients over TLS only.
    public let client: HostPort
    /// Where Prometheus scrapes `/metrics` and `/health`, if configured.
    public let metrics: HostPort?
    /// Where clients connect with TLS (`client-tls=`), if configured; docs/SECURITY.md.
    public let clientTLS: HostPort?
    /// Whether clients may connect without TLS: false for a node line with `client-tls=` and no
    /// `client=`.
    public let servesPlainClients: Bool
    /// The line of the configuration file that defined this node.
    public let line: Int

    /// Creates a node description (normally done by the parser).
    public init(
        id: NodeID, peer: HostPort, client: HostPort, metrics: HostPort?, line: Int, clientTLS: HostPort? = nil,
        servesPlainClients: Bool = true
    ) {
        self.servesPlainClients = servesPlainClients
        self.id = id
        self.peer = peer
        self.client = client
        self.metrics = metrics
        self.clientTLS = clientTLS
        self.line = line
    }
}

/// A `host:port` address; IPv6 hosts are written in brackets (`[::1]:7001`).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    /// The host name or IP address, without brackets.
    public let host: String
    /// The TCP port, 1...65535.
    public let port: Int

    /// Creates an address; `parse` is the checked way in from text.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The address as written in `cluster.conf`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port` or `[v6host]:port`; nil if malformed or the port is outside 1...65535.
    public static func parse(_ text: Substring) -> HostPort? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // an unbracketed IPv6 address is ambiguous
        }
        guard !host.isEmpty, host.allSatisfy(Self.isHostCharacter) else { return nil }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return HostPort(host: String(host), port: port)
    }

    private static func isHostCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "-._:%".contains(character))
    }
}

/// A configuration the daemon cannot start with. `description` is one line:
/// `FILE:LINE: problem` (or `FILE: problem` when no single line is at fault).
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The configuration file, as given.
    public let file: String
    /// The 1-based line at fault, if one is.
    public let line: Int?
    /// What is wrong, in words a user can act on.
    public let message: String

    /// Creates an error for `file` (and `line`, when one line is at fault).
    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
