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

    enum CrashPoint: String {
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
