public import Metrics
import Synchronization

/// Every metric kvd exports, created once through swift-metrics. The daemon
/// bootstraps the Prometheus backend; tests get no-op handlers.
public struct DaemonMetrics: Sendable {
    public let proposalsStarted = Counter(label: "kvd_proposals_started_total")
    public let proposalsCommitted = Counter(label: "kvd_proposals_committed_total")
    public let proposalsFailed = Counter(label: "kvd_proposals_failed_total")
    /// Client writes this node forwarded to its leader, and reads it served as a follower at a
    /// read index from its leader (docs/PROTOCOL.md, "Followers").
    public let forwardedWrites = Counter(label: "kvd_forwarded_writes_total")
    public let forwardedReads = Counter(label: "kvd_forwarded_reads_total")
    public let leaderChanges = Counter(label: "kvd_leader_changes_total")
    /// Client `AUTH` (or `HELLO ... AUTH`) attempts that failed, and that succeeded.
    public let authFailures = Counter(label: "kvd_auth_failures_total")
    public let authSuccesses = Counter(label: "kvd_auth_successes_total")
    /// Client connections closed because their unread replies exceeded `client-reply-bytes-max`.
    public let clientsClosedForReplies = Counter(label: "kvd_clients_closed_for_replies_total")
    public let leaseExpirations = Counter(label: "kvd_lease_expirations_total")
    /// Lease checkpoints this node proposed as leader: leases whose remaining TTL it wrote to the
    /// log, and the entries that carried them. Near zero while leases are kept alive more often
    /// than `lease-checkpoint-ms`.
    public let leaseCheckpoints = Counter(label: "kvd_lease_checkpoints_total")
    public let leaseCheckpointEntries = Counter(label: "kvd_lease_checkpoint_entries_total")
    public let lockGrants = Counter(label: "kvd_lock_grants_total")
    public let fencedRejections = Counter(label: "kvd_fenced_rejections_total")
    /// Peer transport figures, sampled from its counters (see `PeerTransportCounters`).
    public let peerMessagesDropped = Gauge(label: "kvd_peer_messages_dropped")
    /// The same, by reason: `queue_full` (connected but slow), `disconnected` (queue full while
    /// the peer was unreachable), `expired` (waited longer than peer-stall-timeout-ms),
    /// `oversized`, `unroutable`, `inbound_lag` (received batches the Raft loop fell behind on).
    let peerDrops = PeerDropGauges()
    public let peerReconnects = Gauge(label: "kvd_peer_reconnects")
    /// Links whose handshake is done and whose probes are being answered.
    public let peersConnected = Gauge(label: "kvd_peers_connected")
    /// Peer connections closed because their probes went unanswered (see `PeerProbes`).
    public let peerStalls = Gauge(label: "kvd_peer_stalls_total")
    /// Times this node's leader became unreachable and it started an early pre-vote round.
    public let leaderLost = Counter(label: "kvd_leader_unreachable_total")
    public let hasLeader = Gauge(label: "kvd_has_leader")
    public let term = Gauge(label: "kvd_term")
    /// Entries committed but not yet applied on this node.
    public let applyLag = Gauge(label: "kvd_apply_lag_entries")
    /// How long the cluster had no leader, as seen by this node, the last time it had none.
    public let lastFailoverMillis = Gauge(label: "kvd_last_failover_milliseconds")
    public let fsyncDuration = Timer(label: "kvd_fsync_duration_seconds")
    public let connectedClients = Gauge(label: "kvd_client_connections")
    public let lockWait = Timer(label: "kvd_lock_wait_seconds")
    public let snapshotsSent = Counter(label: "kvd_snapshots_sent_total")
    public let snapshotsInstalled = Counter(label: "kvd_snapshots_installed_total")
    public let logCompactions = Counter(label: "kvd_log_compactions_total")
    /// Checkpoints the Raft loop ran so that a long WAL starts over.
    public let walResets = Counter(label: "kvd_wal_resets_total")
    /// How long one Raft loop iteration (one batch of inputs and its Ready cycles) took.
    public let loopIteration = Timer(label: "kvd_loop_iteration_seconds")
    /// One latency timer per command name, made once: creating a metric looks it up in the
    /// backend under a lock, too much to do for every request.
    private let commandTimers = CommandTimers()

    public init() {}

    /// Copies the transport's running totals into their gauges.
    public func record(_ counters: PeerTransportCounters) {
        peerMessagesDropped.record(counters.messagesDropped)
        peerReconnects.record(counters.reconnects)
        peersConnected.record(counters.connectedPeers)
        let links = counters.peers.values
        peerStalls.record(links.reduce(0) { $0 + $1.stalls })
        peerDrops.queueFull.record(links.reduce(0) { $0 + $1.messagesDropped })
        peerDrops.disconnected.record(links.reduce(0) { $0 + $1.messagesDroppedDisconnected })
        peerDrops.expired.record(links.reduce(0) { $0 + $1.messagesExpired })
        peerDrops.oversized.record(links.reduce(0) { $0 + $1.messagesOversized })
        peerDrops.unroutable.record(counters.messagesUnroutable)
        peerDrops.inboundLag.record(counters.inboundBatchesDropped)
    }

    /// The latency timer of one client command name (a connection keeps the one it last used).
    func commandTimer(named name: String) -> Timer {
        commandTimers.timer(for: name)
    }

    /// Time a lock waiter spent queued.
    public func recordLockWait(milliseconds: UInt64) {
        lockWait.recordMilliseconds(milliseconds)
    }
}

/// `kvd_peer_messages_dropped_total{reason=...}`, one gauge per reason (sampled totals).
struct PeerDropGauges: Sendable {
    let queueFull = Self.gauge("queue_full")
    let disconnected = Self.gauge("disconnected")
    let expired = Self.gauge("expired")
    let oversized = Self.gauge("oversized")
    let unroutable = Self.gauge("unroutable")
    let inboundLag = Self.gauge("inbound_lag")

    private static func gauge(_ reason: String) -> Gauge {
        Gauge(label: "kvd_peer_messages_dropped_total", dimensions: [("reason", reason)])
    }
}

/// The per-command latency timers, shared by every connection.
final class CommandTimers: Sendable {
    private let timers = Mutex([String: Timer]())

    func timer(for command: String) -> Timer {
        timers.withLock { timers in
            if let timer = timers[command] { return timer }
            let timer = Timer(label: "kvd_client_command_duration_seconds", dimensions: [("command", command)])
            timers[command] = timer
            return timer
        }
    }
}
