public import KVStore
public import RaftCore

/// Owns one node's Raft state, its log storage and its state machine, and runs only inside the
/// Raft loop (`RaftLoop`): every method runs to completion without suspending, so there is never
/// an `await` in the middle of a state change. Client requests wait here, keyed by
/// log index or read id, until the entry they proposed applies or their deadline passes.
public final class RaftDriver {
    /// What the driver needs to know beyond Raft itself.
    public struct Settings: Sendable {
        /// Each node's client address, for `-NOTLEADER` redirects and `INFO`.
        public var clientAddresses: [NodeID: String]
        public var clusterID: String
        /// A request not answered within this time gets `-TIMEOUT`.
        public var requestTimeoutMillis: UInt64 = 5_000
        /// The longest `LOCK ... WAIT` may wait (also what `WAIT 0` means).
        public var lockWaitMaxMillis: UInt64 = 300_000
        /// Entries applied between two snapshots (log compaction).
        public var snapshotEntries: UInt64 = 10_000
        public var heartbeatMillis: UInt64 = 50
        public var electionTimeoutMillis: UInt64 = 500
        /// How old a lease's recorded remaining TTL may get before the leader checkpoints it
        /// (`lease-checkpoint-ms`): a new leader over-grants a lease by at most this plus the
        /// failover time.
        public var leaseCheckpointMillis: UInt64 = 5_000

        public init(clientAddresses: [NodeID: String], clusterID: String) {
            self.clientAddresses = clientAddresses
            self.clusterID = clusterID
        }
    }

    public let settings: Settings
    var node: RaftNode
    var storage: any LogStorage
    let machine: KVStateMachine
    var leases: LeaseKeeper
    /// Sends messages to peers; must not block (the transport queues them).
    let send: ([Message]) -> Void
    /// Monotonic milliseconds (deadlines, lease clocks) and wall-clock milliseconds (stamped
    /// into commands for the state machine).
    let monotonicMillis: () -> UInt64
    let wallMillis: () -> UInt64
    public let metrics: DaemonMetrics

    var pendingWrites: [LogIndex: PendingWrite] = [:]
    var pendingReads: [ReadRequestID: PendingRead] = [:]
    var readyReads: [(index: LogIndex, read: PendingRead)] = []
    var lockWaiters: [LockWaiterKey: [Waiter]] = [:]
    var readSequence: UInt64 = 0
    var lastRole: RaftRole = .follower
    var lastLeader: NodeID?
    /// When this node last saw the cluster without a leader, for the failover-duration metric.
    var leaderlessSinceMillis: UInt64?

    struct PendingWrite {
        var term: Term
        var kind: Kind
        var deadline: UInt64
        var reply: Responder

        enum Kind {
            case write(ClientCommand.WriteReplyStyle)
            case lock(name: [UInt8], leaseID: UInt64, waitDeadline: UInt64?)
            /// Proposed by this node itself (lease expiry, checkpoint): nobody waits.
            case internalCommand
        }
    }

    struct PendingRead {
        var command: ClientCommand
        var deadline: UInt64
        var reply: Responder
    }

    struct LockWaiterKey: Hashable {
        var name: [UInt8]
        var leaseID: UInt64
    }

    struct Waiter {
        var deadline: UInt64
        var reply: Responder
        /// When the request joined the queue, for the lock wait-time metric.
        var queuedAtMillis: UInt64
    }

    /// Creates the driver from what storage holds: the state machine is brought up to the
    /// stored snapshot if it is behind it, and Raft resumes after the applied index.
    public init(
        configuration: RaftConfiguration, bootstrap: ClusterMembership, settings: Settings,
        storage: any LogStorage, machine: KVStateMachine, seed: UInt64, metrics: DaemonMetrics,
        send: @escaping ([Message]) -> Void, monotonicMillis: @escaping () -> UInt64,
        wallMillis: @escaping () -> UInt64
    ) throws(DaemonError) {
        let state: PersistentState
        do { state = try storage.load() } catch { throw .storage(error) }
        if let snapshot = state.snapshot, machine.appliedIndex < snapshot.metadata.lastIncludedIndex {
            do { try machine.restore(snapshot.data, metadata: snapshot.metadata) } catch { throw .storage(error) }
        }
        do {
            node = try RaftNode(
                configuration: configuration, state: state, bootstrap: bootstrap, appliedIndex: machine.appliedIndex,
                seed: seed)
        } catch {
            throw .configuration("\(error)")
        }
        self.settings = settings
        self.storage = storage
        self.machine = machine
        self.metrics = metrics
        self.send = send
        self.monotonicMillis = monotonicMillis
        self.wallMillis = wallMillis
        // A new leader's first checkpoints come one election timeout after it takes over: a
        // leader that lasts that long then wears every idle lease down, however long the
        // checkpoint interval.
        self.leases = LeaseKeeper(
            checkpointIntervalMillis: settings.leaseCheckpointMillis, retryMillis: 2 * settings.electionTimeoutMillis,
            firstCheckpointDelayMillis: settings.electionTimeoutMillis)
    }

    /// A read-only view of the node.
    public var status: RaftStatus { node.status }

    // MARK: Inputs

    /// Handles every input in `inputs`, then runs the `Ready` cycle once: proposals from many
    /// clients share one log write and one fsync (group commit), and peer messages that arrived
    /// together are acknowledged together. Returns the peer messages that were refused.
    public func process(_ inputs: [LoopInput]) throws(DaemonError) -> [StepError] {
        var rejected: [StepError] = []
        for input in inputs {
            switch input {
            case .tick: onTick()
            case .peerMessages(let messages): rejected += step(messages)
            case .command(let command, let localReads, let responder): start(command, localReads: localReads, reply: responder)
            case .handOver(let done): done(startHandOver())
            }
        }
        try processReady()
        return rejected
    }

    /// One timer tick: Raft's clock, lease expiry on the leader, request deadlines.
    public func tick() throws(DaemonError) {
        onTick()
        try processReady()
    }

    /// Messages from peers. A malformed one is logged by the caller and dropped.
    public func receive(_ messages: [Message]) throws(DaemonError) -> [StepError] {
        let rejected = step(messages)
        try processReady()
        return rejected
    }

    /// One client command; `reply` is called exactly once, now or later.
    public func handle(_ command: ClientCommand, localReads: Bool, reply: Responder) throws(DaemonError) {
        start(command, localReads: localReads, reply: reply)
        try processReady()
    }

    /// Before a graceful stop: a leader hands leadership to its most caught-up voter.
    /// Returns whether a transfer started.
    public func handOverLeadership() throws(DaemonError) -> Bool {
        let started = startHandOver()
        try processReady()
        return started
    }

    func onTick() {
        node.tick()
        let now = monotonicMillis()
        proposeLeaseMaintenance(now: now)
        expireDeadlines(now: now)
    }

    func step(_ messages: [Message]) -> [StepError] {
        var rejected: [StepError] = []
        for message in messages {
            do { try node.step(message) } catch { rejected.append(error) }
        }
        return rejected
    }

    func start(_ command: ClientCommand, localReads: Bool, reply: Responder) {
        let now = monotonicMillis()
        let deadline = now + settings.requestTimeoutMillis
        switch command {
        case .ping(let message): reply.send(message.map { .bulk($0) } ?? .simple("PONG"))
        case .echo(let message): reply.send(.bulk(message))
        case .quit, .readOnly: reply.send(.ok)
        case .emptyArray: reply.send(.array([]))
        case .info: reply.send(.bulk(Array(infoText().utf8)))
        case .get, .getMeta, .mget, .exists, .list, .owner, .leaseTTL:
            startRead(command, localReads: localReads, deadline: deadline, reply: reply)
        case .write(let operation, let session, let style):
            propose(operation, session: session, kind: .write(style), deadline: deadline, reply: reply)
        case .lock(let name, let lease, let wait, let session):
            let waitDeadline = wait.map { now + ($0 == 0 ? settings.lockWaitMaxMillis : min($0, settings.lockWaitMaxMillis)) }
            propose(
                .lockAcquire(name: name, leaseID: lease, wait: wait != nil), session: session,
                kind: .lock(name: name, leaseID: lease, waitDeadline: waitDeadline),
                deadline: max(deadline, waitDeadline ?? 0), reply: reply)
        case .transferLeadership(let target):
            do {
                try node.transferLeadership(to: NodeID(target))
                reply.send(.ok)
            } catch {
                reply.send(proposalErrorReply(error))
            }
        }
    }

    func startHandOver() -> Bool {
        guard let target = node.bestTransferTarget else { return false }
        do { try node.transferLeadership(to: target) } catch { return false }
        return true
    }

    // MARK: Proposals

    func propose(
        _ operation: KVOperation, session: SessionStamp?, kind: PendingWrite.Kind, deadline: UInt64, reply: Responder
    ) {
        let command = KVCommand(session: session, timestampMillis: wallMillis(), operation: operation)
        do {
            let receipt = try node.propose(command.encoded())
            pendingWrites[receipt.index] = PendingWrite(term: receipt.term, kind: kind, deadline: deadline, reply: reply)
            metrics.proposalsStarted.increment()
        } catch {
            metrics.proposalsFailed.increment()
            reply.send(proposalErrorReply(error))
        }
    }

    func proposalErrorReply(_ error: ProposalError) -> Reply {
        switch error {
        case .notLeader(let hint): return notLeaderReply(hint)
        case .leadershipTransferInProgress(let target): return notLeaderReply(NodeID(target.rawValue))
        case .uncommittedBytesLimit: return .err("server busy: too many uncommitted writes; retry later")
        case .tooManyPendingReads: return .err("server busy: too many pending reads; retry later")
        case .membershipChangePending, .invalidMembershipChange, .learnerNotCaughtUp: return .err("\(error)")
        }
    }

    func notLeaderReply(_ hint: NodeID?) -> Reply {
        let leader = hint ?? node.status.leaderID
        return .notLeader(leader, address: leader.flatMap { settings.clientAddresses[$0] })
    }

    /// Lease expiries and checkpoints, proposed only by a leader whose no-op has applied. Costs
    /// O(log n) per lease due and O(1) otherwise (see `LeaseKeeper`); loading every lease happens
    /// once per term, when this node starts leading.
    func proposeLeaseMaintenance(now: UInt64) {
        let status = node.status
        if status.role == .leader {
            if leases.leaderTerm != status.currentTerm, machine.highestTerm == status.currentTerm,
                let all = try? machine.allLeases()
            {
                leases.startLeading(term: status.currentTerm, nowMillis: now, leases: all)
            }
        } else if leases.leaderTerm != nil {
            leases.stopLeading()
        }
        guard leases.leaderTerm != nil else { return }
        let checkpoints = leases.dueCheckpoints(nowMillis: now)
        for case .leaseCheckpoint(_, let batch) in checkpoints {
            metrics.leaseCheckpoints.increment(by: batch.count)
        }
        metrics.leaseCheckpointEntries.increment(by: checkpoints.count)
        for operation in checkpoints + leases.dueExpiries(nowMillis: now) {
            propose(operation, session: nil, kind: .internalCommand, deadline: now + settings.requestTimeoutMillis, reply: .none)
        }
    }
}

/// Why the daemon must stop. Storage failures are fail-stop: a node never limps on with state it
/// cannot trust.
public enum DaemonError: Error, CustomStringConvertible {
    case storage(StorageError)
    case configuration(String)
    case startup(String)

    public var description: String {
        switch self {
        case .storage(let error): return "\(error)"
        case .configuration(let message): return message
        case .startup(let message): return message
        }
    }
}
