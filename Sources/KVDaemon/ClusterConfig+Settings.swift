/// Every setting of `cluster.conf`, with its default. Times are in milliseconds, sizes in bytes.
/// The parser checks each value against its range and the relations below the table; the same
/// table is in docs/CONFIGURATION.md (a test keeps the two in step).
///
/// | setting | default | range | meaning |
/// |---|---|---|---|
/// | `cluster-id` | `kvd` | 1–64 of `A-Z a-z 0-9 . _ -` | name of the cluster, checked in every peer handshake and recorded in each data directory |
/// | `heartbeat-ms` | 50 | 1–60000 | leader heartbeat interval; also the length of one Raft tick |
/// | `election-timeout-ms` | 500 | 5 × heartbeat-ms – 600000 | minimum election timeout (each follower draws from [t, 2t)); rounded down to whole ticks |
/// | `lease-min-ttl-ms` | 2 × election-timeout-ms | election-timeout-ms – lease-max-ttl-ms | shortest lease TTL a client may ask for |
/// | `lease-max-ttl-ms` | 604800000 | 1000–31536000000 | longest lease TTL (7 days) |
/// | `lease-checkpoint-ms` | 5000 | election-timeout-ms – 3600000 | how old a lease's remaining TTL in the log may get before the leader records it again; a new leader gives a lease at most its true remaining TTL + this + the failover time, and leases kept alive more often are not checkpointed while a leader stays in place |
/// | `leases-max` | 100000 | 1–100000000 | most live leases |
/// | `lock-waiters-max` | 1024 | 1–1000000 | most waiters queued on one lock |
/// | `lock-wait-max-ms` | 60000 | 0–86400000 | longest a blocking lock acquire may wait |
/// | `sessions-max` | 10000 | 1–10000000 | most live client sessions (least recently used evicted) |
/// | `session-timeout-ms` | 600000 | 1000–604800000 | an unused client session expires after this long |
/// | `list-keys-max` | 10000 | 1–10000000 | most keys one prefix listing returns |
/// | `snapshot-entries` | 10000 | 1–100000000 | applied entries between log compactions (the state database is made durable, then the log is cut) |
/// | `key-bytes-max` | 1024 | 1–65536 | longest key |
/// | `value-bytes-max` | 1048576 | 1–67108864 | longest value |
/// | `request-bytes-max` | 2097152 | key-bytes-max + value-bytes-max – 134217728 | largest client request (inline line or all bulk strings of one command) |
/// | `pipeline-requests-max` | 1024 | 1–1000000 | pipelined requests in progress per client connection |
/// | `client-connections-max` | 1024 | 1–1000000 | open client connections per node |
/// | `client-partial-request-timeout-ms` | 30000 | 100–3600000 | a client that began a request must finish sending it within this, or it is told so and disconnected (a slow client holds a connection slot; idle connections between requests are never closed) |
/// | `client-reply-bytes-max` | 67108864 | 1048576–17179869184 | replies written to a client connection but not yet read by the client above which the connection is closed (a client that never reads cannot hold the node's memory); while its socket is full it is also sent no new work |
/// | `request-timeout-ms` | 5000 | 10–600000 | a client request not applied by then gets `-TIMEOUT` |
/// | `append-entries-max` | 256 | 1–65536 | most entries per AppendEntries |
/// | `append-bytes-max` | 1048576 | 1–67108864 | most entry bytes per AppendEntries (a larger single entry goes alone) |
/// | `inflight-messages-max` | 64 | 1–65536 | AppendEntries in flight to one follower |
/// | `uncommitted-bytes-max` | 67108864 | 1–17179869184 | uncommitted entry bytes a leader holds before refusing proposals |
/// | `snapshot-chunk-bytes` | 1048576 | 1–67108864 | snapshot bytes per InstallSnapshot chunk (a larger single row goes alone) |
/// | `log-hold-entries-max` | 200000 | 0–100000000 | entries a leader keeps beyond a compaction for followers that answer but lag (they then catch up from the log, not by snapshot); the log is held in memory |
/// | `snapshot-transfers-max` | 2 | 1–64 | snapshot transfers a leader serves at once (each holds a read transaction on the state database) |
/// | `apply-entries-max` | 1024 | 1–1000000 | committed entries applied per Raft step |
/// | `pending-reads-max` | 4096 | 1–1000000 | linearizable reads waiting for leadership confirmation |
/// | `forward-to-leader` | 1 | 0–1 | 1: a follower forwards writes to its leader and serves linearizable reads through it; 0: it answers `-NOTLEADER` (docs/PROTOCOL.md, "Followers") |
/// | `forwarded-writes-max` | 1024 | 1–1000000 | writes a follower keeps forwarded to its leader and unanswered before refusing more (`-ERR server busy`) |
/// | `state-cache-bytes` | 33554432 | 1048576–17179869184 | SQLite page cache of the state database (memory does not grow with the data beyond it) |
/// | `loop-commands-max` | 100000 | 1–10000000 | client commands waiting for the Raft loop before new ones are refused (`-ERR server busy`) |
/// | `peer-frame-bytes-max` | 16777216 | max(append-bytes-max, request-bytes-max, snapshot-chunk-bytes) + 131072 – 1073741824 | largest peer frame sent or accepted |
/// | `peer-queue-messages-max` | 1024 | 1–1000000 | messages queued for one peer, and received batches waiting for the Raft loop, before the oldest are dropped |
/// | `peer-queue-bytes-max` | 67108864 | peer-frame-bytes-max – 17179869184 | bytes queued for one peer before the oldest are dropped |
/// | `peer-reconnect-min-ms` | 25 | 1–60000 | first delay before reconnecting to a peer (doubles per failure) |
/// | `peer-reconnect-max-ms` | 200 | peer-reconnect-min-ms – 600000 | longest delay between reconnection attempts (with `peer-connect-timeout-ms`, bounds how long a healed link stays down) |
/// | `peer-connect-timeout-ms` | 250 | 10–600000 | time allowed to connect to a peer and finish the handshake |
/// | `requirepass` | none | a password hash (`kvctl passwd`) | clients must `AUTH password` (the `default` user, every permission) before any other command |
/// | `users-file` | none | a path (relative to the configuration file's folder) | users, their password hashes and permissions (docs/SECURITY.md); clients must `AUTH user password` |
/// | `peer-secret-file` | none | a path (relative to the configuration file's folder) | a file holding the cluster secret (16–4096 bytes, its first line) every node proves it has in the peer handshake, without sending it; a node without it, or with another, is refused (docs/SECURITY.md) |
/// | `tls-cert-file` | none | a PEM file (relative to the configuration file's folder) | this node's certificate chain, for its `client-tls=` address |
/// | `tls-key-file` | none | a PEM file | the private key of `tls-cert-file` |
/// | `tls-ca-file` | none | a PEM file | certificate authorities that client certificates must chain to (with `tls-client-certs`) |
/// | `tls-client-certs` | none | none, optional, required | whether TLS clients present a certificate: not asked, checked if presented, or required |
/// | `peer-tls-cert-file` | none | a PEM file (relative to the configuration file's folder) | this node's certificate chain for peer connections, used both to listen and to dial; it must name the host of this node's `peer=` address (a DNS or IP subject alternative name). Set with the next two, peer connections are mutual TLS only |
/// | `peer-tls-key-file` | none | a PEM file | the private key of `peer-tls-cert-file` |
/// | `peer-tls-ca-file` | none | a PEM file | certificate authorities every peer's certificate must chain to |
/// | `peer-stall-timeout-ms` | election-timeout-ms | 2 × heartbeat-ms – 600000 | a peer connection whose probes (sent every heartbeat-ms) go unanswered this long is closed and redialed, and the peer is reported unreachable to Raft |
public struct ClusterSettings: Hashable, Sendable {
    /// `cluster-id`.
    public var clusterID = "kvd"
    /// `heartbeat-ms`.
    public var heartbeatMillis = 50
    /// `election-timeout-ms`.
    public var electionTimeoutMillis = 500
    /// `lease-min-ttl-ms`.
    public var leaseMinTTLMillis = 1000
    /// `lease-max-ttl-ms`.
    public var leaseMaxTTLMillis = 7 * 24 * 3600 * 1000
    /// `lease-checkpoint-ms`.
    public var leaseCheckpointMillis = 5000
    /// `leases-max`.
    public var leasesMax = 100_000
    /// `lock-waiters-max`.
    public var lockWaitersMax = 1024
    /// `lock-wait-max-ms`.
    public var lockWaitMaxMillis = 60_000
    /// `sessions-max`.
    public var sessionsMax = 10_000
    /// `session-timeout-ms`.
    public var sessionTimeoutMillis = 600_000
    /// `list-keys-max`.
    public var listKeysMax = 10_000
    /// `snapshot-entries`.
    public var snapshotEntries = 10_000
    /// `key-bytes-max`.
    public var keyBytesMax = 1024
    /// `value-bytes-max`.
    public var valueBytesMax = 1 << 20
    /// `request-bytes-max`.
    public var requestBytesMax = 2 << 20
    /// `pipeline-requests-max`.
    public var pipelineRequestsMax = 1024
    /// `client-connections-max`.
    public var clientConnectionsMax = 1024
    /// `client-partial-request-timeout-ms`.
    public var clientPartialRequestTimeoutMillis = 30_000
    /// `client-reply-bytes-max`.
    public var clientReplyBytesMax = 64 << 20
    /// `request-timeout-ms`.
    public var requestTimeoutMillis = 5000
    /// `append-entries-max`.
    public var appendEntriesMax = 256
    /// `append-bytes-max`.
    public var appendBytesMax = 1 << 20
    /// `inflight-messages-max`.
    public var inflightMessagesMax = 64
    /// `uncommitted-bytes-max`.
    public var uncommittedBytesMax = 64 << 20
    /// `snapshot-chunk-bytes`.
    public var snapshotChunkBytes = 1 << 20
    /// `log-hold-entries-max`.
    public var logHoldEntriesMax = 200_000
    /// `snapshot-transfers-max`.
    public var snapshotTransfersMax = 2
    /// `state-cache-bytes`.
    public var stateCacheBytes = 32 << 20
    /// `loop-commands-max`.
    public var loopCommandsMax = 100_000
    /// `apply-entries-max`.
    public var applyEntriesMax = 1024
    /// `pending-reads-max`.
    public var pendingReadsMax = 4096
    /// `forward-to-leader` (1 on, 0 off).
    public var forwardToLeader = 1
    /// `forwarded-writes-max`.
    public var forwardedWritesMax = 1024
    /// `peer-frame-bytes-max`.
    public var peerFrameBytesMax = 16 << 20
    /// `peer-queue-messages-max`.
    public var peerQueueMessagesMax = 1024
    /// `peer-queue-bytes-max`.
    public var peerQueueBytesMax = 64 << 20
    /// `peer-reconnect-min-ms`.
    public var peerReconnectMinMillis = 25
    /// `peer-reconnect-max-ms`.
    public var peerReconnectMaxMillis = 200
    /// `peer-connect-timeout-ms`.
    public var peerConnectTimeoutMillis = 250
    /// `peer-stall-timeout-ms` (follows `election-timeout-ms` unless set).
    public var peerStallTimeoutMillis = 500

    /// `requirepass`: the hash of the `default` user's password, as written.
    public var requirePass: String?
    /// `users-file`, as written.
    public var usersFile: String?
    /// `peer-secret-file`, as written.
    public var peerSecretFile: String?
    /// `tls-cert-file`, `tls-key-file`, `tls-ca-file`, as written.
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var tlsCAFile: String?
    /// `tls-client-certs`.
    public var tlsClientCertificates = TLSClientCertificates.none
    /// `peer-tls-cert-file`, `peer-tls-key-file`, `peer-tls-ca-file`, as written.
    public var peerTLSCertFile: String?
    public var peerTLSKeyFile: String?
    public var peerTLSCAFile: String?

    /// The file settings of TLS, by name.
    static var tlsFileSettings: [String: WritableKeyPath<ClusterSettings, String?>] {
        [
            "tls-cert-file": \.tlsCertFile, "tls-key-file": \.tlsKeyFile, "tls-ca-file": \.tlsCAFile,
            "peer-tls-cert-file": \.peerTLSCertFile, "peer-tls-key-file": \.peerTLSKeyFile, "peer-tls-ca-file": \.peerTLSCAFile,
        ]
    }

    /// The peer TLS settings, which go together.
    static let peerTLSSettingNames = ["peer-tls-cert-file", "peer-tls-key-file", "peer-tls-ca-file"]

    /// The defaults of the table above.
    public init() {}

    /// Settings whose value is text (the others are integers).
    static let textSettingNames = [
        "cluster-id", "requirepass", "users-file", "peer-secret-file", "tls-cert-file", "tls-key-file", "tls-ca-file",
        "tls-client-certs", "peer-tls-cert-file", "peer-tls-key-file", "peer-tls-ca-file",
    ]

    /// Bytes a peer frame needs beyond its largest payload (message headers, per-entry framing).
    public static let peerFrameOverheadBytes = 128 << 10
}

/// One integer setting: its name in `cluster.conf`, where it lives and its fixed range. Ranges that
/// depend on other settings are checked afterwards by `ClusterSettings.checkRelations`.
struct IntegerSetting {
    let name: String
    let keyPath: WritableKeyPath<ClusterSettings, Int>
    let range: ClosedRange<Int>

    init(_ name: String, _ keyPath: WritableKeyPath<ClusterSettings, Int>, _ range: ClosedRange<Int>) {
        self.name = name
        self.keyPath = keyPath
        self.range = range
    }

    /// Every integer setting. A computed property because key paths are not `Sendable`.
    static var all: [IntegerSetting] {
        [
            IntegerSetting("heartbeat-ms", \.heartbeatMillis, 1...60_000),
            IntegerSetting("election-timeout-ms", \.electionTimeoutMillis, 5...600_000),
            IntegerSetting("lease-min-ttl-ms", \.leaseMinTTLMillis, 5...31_536_000_000),
            IntegerSetting("lease-max-ttl-ms", \.leaseMaxTTLMillis, 1000...31_536_000_000),
            IntegerSetting("lease-checkpoint-ms", \.leaseCheckpointMillis, 5...3_600_000),
            IntegerSetting("leases-max", \.leasesMax, 1...100_000_000),
            IntegerSetting("lock-waiters-max", \.lockWaitersMax, 1...1_000_000),
            IntegerSetting("lock-wait-max-ms", \.lockWaitMaxMillis, 0...86_400_000),
            IntegerSetting("sessions-max", \.sessionsMax, 1...10_000_000),
            IntegerSetting("session-timeout-ms", \.sessionTimeoutMillis, 1000...604_800_000),
            IntegerSetting("list-keys-max", \.listKeysMax, 1...10_000_000),
            IntegerSetting("snapshot-entries", \.snapshotEntries, 1...100_000_000),
            IntegerSetting("key-bytes-max", \.keyBytesMax, 1...65536),
            IntegerSetting("value-bytes-max", \.valueBytesMax, 1...(64 << 20)),
            IntegerSetting("request-bytes-max", \.requestBytesMax, 2...(128 << 20)),
            IntegerSetting("pipeline-requests-max", \.pipelineRequestsMax, 1...1_000_000),
            IntegerSetting("client-connections-max", \.clientConnectionsMax, 1...1_000_000),
            IntegerSetting("client-partial-request-timeout-ms", \.clientPartialRequestTimeoutMillis, 100...3_600_000),
            IntegerSetting("client-reply-bytes-max", \.clientReplyBytesMax, (1 << 20)...(16 << 30)),
            IntegerSetting("request-timeout-ms", \.requestTimeoutMillis, 10...600_000),
            IntegerSetting("append-entries-max", \.appendEntriesMax, 1...65536),
            IntegerSetting("append-bytes-max", \.appendBytesMax, 1...(64 << 20)),
            IntegerSetting("inflight-messages-max", \.inflightMessagesMax, 1...65536),
            IntegerSetting("uncommitted-bytes-max", \.uncommittedBytesMax, 1...(16 << 30)),
            IntegerSetting("snapshot-chunk-bytes", \.snapshotChunkBytes, 1...(64 << 20)),
            IntegerSetting("log-hold-entries-max", \.logHoldEntriesMax, 0...100_000_000),
            IntegerSetting("snapshot-transfers-max", \.snapshotTransfersMax, 1...64),
            IntegerSetting("apply-entries-max", \.applyEntriesMax, 1...1_000_000),
            IntegerSetting("pending-reads-max", \.pendingReadsMax, 1...1_000_000),
            IntegerSetting("forward-to-leader", \.forwardToLeader, 0...1),
            IntegerSetting("forwarded-writes-max", \.forwardedWritesMax, 1...1_000_000),
            IntegerSetting("state-cache-bytes", \.stateCacheBytes, (1 << 20)...(16 << 30)),
            IntegerSetting("loop-commands-max", \.loopCommandsMax, 1...10_000_000),
            IntegerSetting("peer-frame-bytes-max", \.peerFrameBytesMax, 1...(1 << 30)),
            IntegerSetting("peer-queue-messages-max", \.peerQueueMessagesMax, 1...1_000_000),
            IntegerSetting("peer-queue-bytes-max", \.peerQueueBytesMax, 1...(16 << 30)),
            IntegerSetting("peer-reconnect-min-ms", \.peerReconnectMinMillis, 1...60_000),
            IntegerSetting("peer-reconnect-max-ms", \.peerReconnectMaxMillis, 1...600_000),
            IntegerSetting("peer-connect-timeout-ms", \.peerConnectTimeoutMillis, 10...600_000),
            IntegerSetting("peer-stall-timeout-ms", \.peerStallTimeoutMillis, 2...600_000),
        ]
    }
}

/// One name and value shown by `CONFIG GET`.
public struct ConfigParameter: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension ClusterSettings {
    /// Every setting with its value, in documentation order (what `CONFIG GET` shows).
    public var parameters: [ConfigParameter] {
        // `requirepass` is a secret: never shown.
        [
            ConfigParameter("cluster-id", clusterID), ConfigParameter("users-file", usersFile ?? ""),
            ConfigParameter("peer-secret-file", peerSecretFile ?? ""), ConfigParameter("tls-cert-file", tlsCertFile ?? ""),
            ConfigParameter("tls-key-file", tlsKeyFile ?? ""), ConfigParameter("tls-ca-file", tlsCAFile ?? ""),
            ConfigParameter("tls-client-certs", tlsClientCertificates.rawValue),
            ConfigParameter("peer-tls-cert-file", peerTLSCertFile ?? ""), ConfigParameter("peer-tls-key-file", peerTLSKeyFile ?? ""),
            ConfigParameter("peer-tls-ca-file", peerTLSCAFile ?? ""),
        ]
            + IntegerSetting.all.map { ConfigParameter($0.name, String(self[keyPath: $0.keyPath])) }
    }

    /// Every setting name, the text ones first.
    public static var names: [String] { textSettingNames + IntegerSetting.all.map(\.name) }

    /// Checks the settings whose valid range depends on another setting. `lineOf` gives the line
    /// where a setting was written (nil if defaulted), so the error points at the line to change.
    func checkRelations(file: String, lineOf: (String) -> Int?) throws(ConfigError) {
        func fail(_ names: [String], _ message: String) -> ConfigError {
            // Blame the last of the involved settings that was actually written.
            let line = names.compactMap(lineOf).max()
            return ConfigError(file: file, line: line, message: message)
        }
        if electionTimeoutMillis < 5 * heartbeatMillis {
            throw fail(["heartbeat-ms", "election-timeout-ms"],
                "election-timeout-ms \(electionTimeoutMillis) must be at least 5 × heartbeat-ms (\(5 * heartbeatMillis))")
        }
        if leaseMinTTLMillis < electionTimeoutMillis {
            throw fail(["election-timeout-ms", "lease-min-ttl-ms"],
                "lease-min-ttl-ms \(leaseMinTTLMillis) must be at least election-timeout-ms (\(electionTimeoutMillis))")
        }
        if leaseMinTTLMillis > leaseMaxTTLMillis {
            throw fail(["lease-min-ttl-ms", "lease-max-ttl-ms"],
                "lease-min-ttl-ms \(leaseMinTTLMillis) exceeds lease-max-ttl-ms (\(leaseMaxTTLMillis))")
        }
        if leaseCheckpointMillis < electionTimeoutMillis {
            throw fail(["election-timeout-ms", "lease-checkpoint-ms"],
                "lease-checkpoint-ms \(leaseCheckpointMillis) must be at least election-timeout-ms (\(electionTimeoutMillis))")
        }
        if requestBytesMax < keyBytesMax + valueBytesMax {
            throw fail(["key-bytes-max", "value-bytes-max", "request-bytes-max"],
                "request-bytes-max \(requestBytesMax) must be at least key-bytes-max + value-bytes-max (\(keyBytesMax + valueBytesMax))")
        }
        let frameNeeded = max(appendBytesMax, requestBytesMax, snapshotChunkBytes) + Self.peerFrameOverheadBytes
        if peerFrameBytesMax < frameNeeded {
            throw fail(["append-bytes-max", "request-bytes-max", "snapshot-chunk-bytes", "peer-frame-bytes-max"],
                "peer-frame-bytes-max \(peerFrameBytesMax) must be at least max(append-bytes-max, request-bytes-max, snapshot-chunk-bytes) + \(Self.peerFrameOverheadBytes) (\(frameNeeded))")
        }
        if peerQueueBytesMax < peerFrameBytesMax {
            throw fail(["peer-frame-bytes-max", "peer-queue-bytes-max"],
                "peer-queue-bytes-max \(peerQueueBytesMax) must be at least peer-frame-bytes-max (\(peerFrameBytesMax))")
        }
        if peerReconnectMaxMillis < peerReconnectMinMillis {
            throw fail(["peer-reconnect-min-ms", "peer-reconnect-max-ms"],
                "peer-reconnect-max-ms \(peerReconnectMaxMillis) is below peer-reconnect-min-ms (\(peerReconnectMinMillis))")
        }
        let peerTLSFiles = [peerTLSCertFile, peerTLSKeyFile, peerTLSCAFile]
        if peerTLSFiles.contains(where: { $0 != nil }) && peerTLSFiles.contains(where: { $0 == nil }) {
            throw fail(Self.peerTLSSettingNames,
                "peer-tls-cert-file, peer-tls-key-file and peer-tls-ca-file go together: peer TLS is mutual, so every node needs its certificate, its key and the authorities that sign the others'")
        }
        if peerStallTimeoutMillis < 2 * heartbeatMillis {
            throw fail(["heartbeat-ms", "peer-stall-timeout-ms"],
                "peer-stall-timeout-ms \(peerStallTimeoutMillis) must be at least 2 × heartbeat-ms (\(2 * heartbeatMillis)): probes go out every heartbeat")
        }
    }
}

/// `tls-client-certs`: whether clients on a TLS address present certificates.
public enum TLSClientCertificates: String, Hashable, Sendable {
    case none, optional, required
}
