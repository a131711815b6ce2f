import RaftCore

/// One simulated server: a production `RaftNode`, its disk (`MemoryLogStorage`, which loses
/// unsynced writes on `crash()`), its state machine and the client requests waiting on it.
/// Everything but the disk vanishes when it crashes.
final class SimServer {
    let id: NodeID
    let configuration: RaftConfiguration
    /// The disk survives crashes (minus unsynced writes).
    var storage = MemoryLogStorage()
    /// Nil while crashed.
    var node: RaftNode?
    var machine = KeyValueRegister()
    /// The state machine's durable copy (survives crashes): kvd's state database, which records
    /// its applied index with the data and is what log compaction relies on.
    var durableState: DurableState?
    /// The snapshot being received (lost in a crash, like a half-written file is discarded).
    var incoming: (metadata: SnapshotMetadata, data: [UInt8])?
    /// The state each peer's snapshot transfer is reading, as of the index it describes.
    var outgoing: [NodeID: (metadata: SnapshotMetadata, data: [UInt8])] = [:]
    /// Peers whose snapshot transfer must start over (asked for a chunk this node cannot serve).
    var transfersToRestart: [NodeID] = []
    var restartAt: UInt64 = 0
    var pausedUntil: UInt64 = 0
    /// Where to crash inside the next `Ready`, if a crash was scheduled there.
    var crashPoint: CrashPoint?
    /// A crash scheduled for this tick (targeted faults), if any.
    var crashAt: UInt64?
    /// Counts restarts, so that per-incarnation checks know when in-memory state began anew.
    var incarnation = 0

    /// Writes proposed here, by log index, until applied here (then acknowledged or failed).
    var pendingWrites: [LogIndex: PendingWrite] = [:]
    /// Reads requested here and not yet answered by a `ReadState`.
    var pendingReads: [ReadRequestID: PendingRead] = [:]
    /// Reads with a read index, waiting for the state machine to reach it.
    var readyReads: [(read: PendingRead, index: LogIndex)] = []
    var readSequence: UInt64 = 0

    /// What the checker last saw of this incarnation (monotonicity, Leader Append-Only).
    var seen = Observation()
    /// Highest term this server revealed in a message that depends on it being durable.
    var exposedTerm: Term = .zero

    /// A durable copy of the state machine. `installed` is the snapshot it came from when it was
    /// installed from a leader (the log may not hold its last entry yet).
    struct DurableState {
        var appliedIndex: LogIndex
        var data: [UInt8]
        var installed: SnapshotMetadata?
    }

    /// Where a scheduled crash strikes. `midInstall` waits for a `Ready` that installs a snapshot,
    /// `afterEarlySend` for one with messages that may leave before persisting (a leader's);
    /// the others strike in the next `Ready`.
    enum CrashPoint: String {
        case afterEarlySend = "after sending a leader's AppendEntries, before persisting them"
        case midInstall = "after installing a snapshot's state, before storing its metadata"
        case afterPersist = "after persisting a Ready, before sending"
        case afterSend = "after sending a Ready, before applying"
        case afterReady = "right after a Ready"
    }

    struct PendingWrite {
        var operation: UInt64
        var key: UInt8
        var term: Term
    }

    struct PendingRead {
        var id: ReadRequestID
        /// For each key, the latest write acknowledged before the read was requested.
        var mustObserve: [AckedWrite?]
    }

    struct Observation {
        var term: Term = .zero
        var role: RaftRole = .follower
        var commit: LogIndex = .zero
        var applied: LogIndex = .zero
        var lastIndex: LogIndex = .zero
        var lastTerm: Term = .zero
    }

    init(id: NodeID, configuration: RaftConfiguration) {
        self.id = id
        var configuration = configuration
        configuration.id = id
        self.configuration = configuration
    }

    var isRunning: Bool { node != nil }

    func isPaused(at tick: UInt64) -> Bool { pausedUntil > tick }

    /// Drops all in-memory state; the disk keeps only what was synced.
    func crash() {
        node = nil
        storage.crash()
        machine = KeyValueRegister()
        incoming = nil
        outgoing = [:]
        transfersToRestart = []
        pendingWrites = [:]
        pendingReads = [:]
        readyReads = []
        crashPoint = nil
        crashAt = nil
        pausedUntil = 0
    }
}

/// A write the client saw succeed: its entry was applied on the leader that proposed it, in the
/// term of the proposal.
struct AckedWrite: Hashable {
    var operation: UInt64
    var index: LogIndex
}
