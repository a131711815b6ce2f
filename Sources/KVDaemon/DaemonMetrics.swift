public import Metrics
import Synchronization

/// Every metric kvd exports, created once through swift-metrics. The daemon
/// bootstraps the Prometheus backend; tests get no-op handlers.
public struct DaemonMetrics: Sendable {
    public let proposalsStarted = Counter(label: "kvd_proposals_started_total")
    public let proposalsCommitted = Counter(label: "kvd_proposals_committed_total")
    public let proposalsFailed = Counter(label: "kvd_proposals_failed_total")
    public let leaderChanges = Counter(label: "kvd_leader_changes_total")
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
    public let peerReconnects = Gauge(label: "kvd_peer_reconnects")
    public let peersConnected = Gauge(label: "kvd_peers_connected")
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
    }

    /// Latency of one client command, per command name.
    public func recordCommand(_ name: String, nanoseconds: Int64) {
        commandTimers.timer(for: name).recordNanoseconds(nanoseconds)
    }

    /// Time a lock waiter spent queued.
    public func recordLockWait(milliseconds: UInt64) {
        lockWait.recordMilliseconds(milliseconds)
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
