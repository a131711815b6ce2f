#if canImport(Glibc)
import Glibc
#endif
public import KVStore
public import Logging
public import RaftCore

/// Owns one node's Raft state, its log storage and its state machine, and runs only inside the
/// Raft loop (`RaftLoop`): every method runs to completion without suspending, so there is never
/// an `await` in the middle of a state change. Client requests wait here, keyed by
/// log index or read id, until the entry they proposed applies or their deadline passes.
public final class RaftDriver {
    /// What the driver needs to know beyond Raft itself.
    public struct Settings: Sendable {
        /// Whether a follower forwards writes to its leader and serves reads at a read index from
        /// it (`forward-to-leader`, docs/PROTOCOL.md "Followers"); when off, or for a connection
        /// that asked for redirects, it answers `-NOTLEADER` as before.
        public var forwardsToLeader = true
        /// The most writes a follower keeps forwarded and unanswered; more are refused at once
        /// ("server busy"), which pushes back on the clients instead of piling up at the leader.
        public var forwardedWritesMax = 1_024
        /// Each node's client address, for `-NOTLEADER` redirects and `INFO`, until the replicated
        /// members' addresses (`kv_members`) say otherwise.
        public var clientAddresses: [NodeID: String]
        /// The nodes of `cluster.conf`: what seeds `kv_members` when a leader finds it empty (a new
        /// cluster, or one made before the table existed), and where a member without a row is reached.
        public var bootstrapMembers: [MemberAddresses] = []
        /// Told every member's addresses whenever they change (the daemon's peer transport).
        public var membersChanged: (@Sendable ([MemberAddresses]) -> Void)?
        public var clusterID: String
        /// A request not answered within this time gets `-TIMEOUT`.
        public var requestTimeoutMillis: UInt64 = 5_000
        /// The longest `LOCK ... WAIT` may wait (also what `WAIT 0` means).
        public var lockWaitMaxMillis: UInt64 = 300_000
        /// Entries applied between two snapshots (log compaction).
        public var snapshotEntries: UInt64 = 10_000
        /// Most snapshot transfers a leader serves at once (each holds a read transaction open).
        public var snapshotTransfersMax = 2
        /// A WAL of more frames (pages) than this is checkpointed from the loop so that it starts
        /// over (see `resetLongWALs`): 65,536 frames of 4 KiB, 256 MiB. That checkpoint fsyncs in
        /// the loop (hundreds of ms on a busy disk), so it should be rare; a longer WAL costs each
        /// page read a few more hash probes and a crash recovery a longer scan.
        public var walResetFrames = 65_536
        /// How far the background checkpointer copied each WAL; without them (tests, simulation)
        /// the loop never checkpoints on its own.
        public var logWALProgress: WALProgress?
        public var stateWALProgress: WALProgress?
        /// The most WAL frames the loop copies in its own checkpoint (4 MiB).
        public var walResidualFramesMax = 1_024
        /// How long one loop iteration may keep handling `Ready`s before it takes new inputs.
        public var readyBudgetMillis: UInt64 = 10
        /// A loop iteration longer than this is logged with what it did.
        public var slowIterationMillis: UInt64 = 50
        public var heartbeatMillis: UInt64 = 50
        public var electionTimeoutMillis: UInt64 = 500
        /// How old a lease's recorded remaining TTL may get before the leader checkpoints it
        /// (`lease-checkpoint-ms`): a new leader over-grants a lease by at most this plus the
        /// failover time.
        public var leaseCheckpointMillis: UInt64 = 5_000
        /// Most keys one `KEYS` call may examine (it holds the Raft loop; `SCAN` has no such limit).
        public var keysExaminedMax = 100_000
        /// Most keys one leader expiry entry deletes.
        public var expiryBatchMax = 1_000
        /// The peer transport's counters, for `INFO` (nil in tests and simulations).
        public var peerCounters: (@Sendable () -> PeerTransportCounters)?

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
    /// Where elections, snapshots and compactions are reported (the loop sets the daemon's).
    public var logger = Logger(label: "kvd.raft", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Snapshot transfers this leader serves, by follower.
    var outgoing: [NodeID: OutgoingTransfer] = [:]
    /// The snapshot this follower is receiving.
    var incoming: IncomingTransfer?
    /// Followers whose transfer must start over (set while handling a `Ready`, done after it).
    var transfersToRestart: [NodeID] = []
    /// Backups being streamed to clients (`SNAPSHOT BEGIN`), by id.
    var backups: [UInt64: BackupTransfer] = [:]
    var nextBackupID: UInt64 = 1
    /// Loop iteration durations, for `INFO`.
    var iterations = LoopIterationStats()
    /// Where the current iteration's time went, for the slow-iteration warning.
    var iterationWork = IterationWork()

    struct IterationWork {
        /// The loop thread's CPU time when the iteration began: wall time well above CPU time
        /// means the iteration waited (for the disk, or for a core on a busy machine).
        var cpuStartMicros: UInt64 = 0
        var readies = 0
        var persistMillis: UInt64 = 0
        var applyMillis: UInt64 = 0
        var compactMillis: UInt64 = 0
    }
    /// The applied index before which compaction is not tried again (after a cut held short).
    var nextCompactionAt: LogIndex = .zero

    /// When the driver was made, for `INFO`'s uptime.
    let startedAtMillis: UInt64
    /// Client requests waiting for their entry, their read index or a lock.
    var requests = PendingRequests()
    var readSequence: UInt64 = 0
    /// The sequence number of this node's last forwarded write. It starts at the wall clock in
    /// nanoseconds when the driver is made, so that a forward tagged before a restart (still in
    /// the log, applied after it) never matches a write forwarded after it.
    var forwardSequence: UInt64
    var forwarding = ForwardingCounters()
    var lastRole: RaftRole = .follower
    var lastLeader: NodeID?
    /// What the transport reported about the leader this node lost, for the next role-change log.
    var leaderLossReason: String?
    /// The leader's last key-expiry entry, until it applies (one at a time, see `proposeKeyExpiries`).
    var keyExpiryInFlight: (index: LogIndex, term: Term)?
    /// The last expiry entry was a full batch: more keys may be due, so the next is proposed as soon
    /// as it applies.
    var keyExpiryBacklog = false
    /// When this node last saw the cluster without a leader, for the failover-duration metric.
    var leaderlessSinceMillis: UInt64?
    /// Each member's client address, as `kv_members` (over `cluster.conf`) says.
    var clientAddresses: [NodeID: String]
    /// The members' addresses last handed to `settings.membersChanged`.
    var announcedMembers: [MemberAddresses]?
    /// The term in which this leader proposed `kv_members`' seed from `cluster.conf`.
    var membersSeededTerm: Term?
    /// The membership in force when the driver last looked, to log each change once.
    var lastMembership: ClusterMembership

    typealias PendingWrite = PendingRequests.Write

    /// Creates the driver from what storage holds: the state machine is brought up to the
    /// stored snapshot if it is behind it, and Raft resumes after the applied index.
    public init(
        configuration: RaftConfiguration, bootstrap: ClusterMembership, settings: Settings,
        storage: any LogStorage, machine: KVStateMachine, seed: UInt64, metrics: DaemonMetrics,
        send: @escaping ([Message]) -> Void, monotonicMillis: @escaping () -> UInt64,
        wallMillis: @escaping () -> UInt64
    ) throws(DaemonError) {
        var state: PersistentState
        var storage = storage
        do {
            state = try storage.load()
            try Self.completeInterruptedInstall(&state, storage: &storage, machine: machine)
        } catch {
            throw .storage(error)
        }
        // A snapshot half received before a crash is abandoned (the leader sends it again).
        StateSnapshotWriter.remove(Self.incomingSnapshotPath(beside: machine.databasePath))
        if let snapshot = state.snapshot, machine.appliedIndex < snapshot.metadata.lastIncludedIndex {
            // Logs written before the state database was the snapshot kept the state in the
            // snapshot row; a newer log keeps none, and the state must not be behind it.
            guard !snapshot.data.isEmpty else {
                throw .storage(
                    .corrupt(
                        "\(machine.databasePath): the state is at index \(machine.appliedIndex) but the log was compacted "
                            + "up to \(snapshot.metadata.lastIncludedIndex); the state database lost writes"))
            }
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
        self.clientAddresses = settings.clientAddresses
        self.lastMembership = node.status.membership
        self.storage = storage
        self.machine = machine
        self.metrics = metrics
        self.send = send
        self.monotonicMillis = monotonicMillis
        self.wallMillis = wallMillis
        self.startedAtMillis = monotonicMillis()
        self.forwardSequence = wallMillis() &* 1_000_000
        // A new leader's first checkpoints come one election timeout after it takes over: a
        // leader that lasts that long then wears every idle lease down, however long the
        // checkpoint interval.
        self.leases = LeaseKeeper(
            checkpointIntervalMillis: settings.leaseCheckpointMillis, retryMillis: 2 * settings.electionTimeoutMillis,
            firstCheckpointDelayMillis: settings.electionTimeoutMillis)
        refreshMembers()
    }

    /// Whether `Ready`s are left over from the last iteration (the loop must come back).
    public var hasPendingWork: Bool { node.hasReady }

    /// A read-only view of the node.
    public var status: RaftStatus { node.status }

    // MARK: Inputs

    /// Handles every input in `inputs`, then runs the `Ready` cycle once: proposals from many
    /// clients share one log write and one fsync (group commit), and peer messages that arrived
    /// together are acknowledged together. Returns the peer messages that were refused.
    public func process(_ inputs: [LoopInput]) throws(DaemonError) -> [StepError] {
        let started = ContinuousClock.now
        let appliedBefore = machine.appliedIndex
        iterationWork = IterationWork(cpuStartMicros: Self.threadCPUMicros())
        defer { recordIteration(since: started, inputs: inputs, appliedBefore: appliedBefore) }
        var rejected: [StepError] = []
        for input in inputs {
            switch input {
            case .tick: onTick()
            case .peerMessages(let messages): rejected += step(messages)
            case .command(let command, let routing, let responder): start(command, routing: routing, reply: responder)
            case .handOver(let done): done(startHandOver())
            case .peerUnreachable(let peer): onPeerUnreachable(peer)
            case .peerStalled(let peer): onPeerStalled(peer)
            }
        }
        try processReady()
        if keyExpiryBacklog {
            proposeKeyExpiries()
            try processReady()
        }
        return rejected
    }

    /// Records how long one loop iteration took, and reports one over `slowIterationMillis`
    /// with what it did.
    func recordIteration(since started: ContinuousClock.Instant, inputs: [LoopInput], appliedBefore: LogIndex) {
        let elapsed = (ContinuousClock.now - started).components
        let micros = UInt64(elapsed.seconds) * 1_000_000 + UInt64(elapsed.attoseconds / 1_000_000_000_000)
        iterations.record(micros: micros)
        metrics.loopIteration.recordMicroseconds(micros)
        guard micros >= settings.slowIterationMillis * 1000 else { return }
        var ticks = 0, peerBatches = 0, commands = 0
        for input in inputs {
            switch input {
            case .tick: ticks += 1
            case .peerMessages: peerBatches += 1
            case .command: commands += 1
            case .handOver, .peerUnreachable, .peerStalled: break
            }
        }
        logger.warning(
            "slow raft loop iteration",
            metadata: [
                "ms": "\(micros / 1000)", "ticks": "\(ticks)", "peer_batches": "\(peerBatches)", "commands": "\(commands)",
                "cpu_ms": "\((Self.threadCPUMicros() &- iterationWork.cpuStartMicros) / 1000)",
                "readies": "\(iterationWork.readies)", "persist_ms": "\(iterationWork.persistMillis)",
                "apply_ms": "\(iterationWork.applyMillis)", "compact_ms": "\(iterationWork.compactMillis)",
                "applied": "\(machine.appliedIndex.rawValue - appliedBefore.rawValue)",
                "snapshot_transfers": "\(outgoing.count)", "receiving_snapshot": "\(incoming != nil)",
            ])
    }

    /// CPU time of the calling thread, in microseconds.
    static func threadCPUMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// One timer tick: Raft's clock, lease expiry on the leader, request deadlines.
    func onTick() {
        node.tick()
        let now = monotonicMillis()
        proposeLeaseMaintenance(now: now)
        proposeKeyExpiries()
        seedMembersIfEmpty()
        expireDeadlines(now: now)
        dropIdleTransfers(now: now)
        dropIdleBackups(now: now)
    }

    /// The transport saw `peer` go away. If it led this node, the node forgets it and campaigns
    /// at its place in the stagger instead of after an election timeout (`RaftNode.peerUnreachable`).
    func onPeerUnreachable(_ peer: NodeID) {
        let before = node.status
        node.peerUnreachable(peer)
        guard before.leaderID == peer, node.status.leaderID == nil else { return }
        leaderLossReason = "leader \(peer) unreachable (its connection ended)"
        metrics.leaderLost.increment()
        logger.info(
            "leader unreachable; starting a pre-vote round early",
            metadata: ["leader": "\(peer)", "term": "\(before.currentTerm)", "role": "\(node.status.role)"])
    }

    /// The transport saw `peer` stop answering on an open connection. If it leads this node, the
    /// node campaigns when its lease ends instead of at its randomized timeout (`RaftNode.peerStalled`).
    func onPeerStalled(_ peer: NodeID) {
        guard node.status.leaderID == peer else { return }
        logger.info("leader stopped answering probes; campaigning when the leader lease ends", metadata: ["leader": "\(peer)"])
        leaderLossReason = "leader \(peer) stopped answering probes"
        node.peerStalled(peer)
    }

    /// Messages from peers; returns those refused as malformed (the caller logs and drops them).
    func step(_ messages: [Message]) -> [StepError] {
        var rejected: [StepError] = []
        for message in messages {
            guard let message = restampForwarded(message) else { continue }
            do { try node.step(message) } catch { rejected.append(error) }
        }
        return rejected
    }

    /// One client command; `reply` is called exactly once, now or later.
    func start(_ command: ClientCommand, routing: CommandRouting, reply: Responder) {
        let now = monotonicMillis()
        let deadline = now + settings.requestTimeoutMillis
        switch command {
        case .ping(let message): reply.send(message.map { .bulk($0) } ?? .simple("PONG"))
        case .echo(let message): reply.send(.bulk(message))
        case .quit, .readOnly: reply.send(.ok)
        case .emptyArray: reply.send(.array([]))
        case .connection: reply.send(.err("connection commands are answered by the connection"))
        case .info(let sections): reply.send(.verbatim(infoText(sections: sections)))
        case .read, .getMeta, .list, .owner, .leaseTTL, .scan, .keys, .watch, .randomKey:
            startRead(command, routing: routing, deadline: deadline, reply: reply)
        case .write(let operation, let session, let style):
            propose(operation, session: session, kind: .write(style), deadline: deadline, routing: routing, reply: reply)
        case .lock(let name, let lease, let wait, let session):
            let waitDeadline = wait.map { now + ($0 == 0 ? settings.lockWaitMaxMillis : min($0, settings.lockWaitMaxMillis)) }
            propose(
                .lockAcquire(name: name, leaseID: lease, wait: wait != nil), session: session,
                kind: .lock(name: name, leaseID: lease, waitDeadline: waitDeadline),
                deadline: max(deadline, waitDeadline ?? 0), routing: routing, reply: reply)
        case .member(let request):
            startMember(request, routing: routing, deadline: deadline, reply: reply)
        case .transferLeadership(let target):
            let voters = node.status.membership.voters
            guard voters.contains(NodeID(target)) else {
                let list = voters.sorted().map(\.description).joined(separator: ",")
                reply.send(.err("node \(target) is not a voter of this cluster (voters: \(list))"))
                return
            }
            do {
                try node.transferLeadership(to: NodeID(target))
                reply.send(.ok)
            } catch {
                reply.send(proposalErrorReply(error))
            }
        case .backup(let step): reply.send(serveBackup(step))
        }
    }

    /// Before a graceful stop: a leader hands leadership to its most caught-up voter.
    /// Returns whether a transfer started.
    func startHandOver() -> Bool {
        guard let target = node.bestTransferTarget else { return false }
        do { try node.transferLeadership(to: target) } catch { return false }
        return true
    }

    // MARK: Proposals

    /// Proposes a client's write (`routing` set) or this node's own (`routing` nil, never
    /// forwarded: lease maintenance is a leader's alone). A follower forwards a client's write to
    /// its leader unless the connection asked for redirects.
    func propose(
        _ operation: KVOperation, session: SessionStamp?, kind: PendingWrite.Kind, deadline: UInt64,
        routing: CommandRouting?, reply: Responder
    ) {
        if let routing, !node.isLeader, forwards(routing) {
            forward(operation, session: session, kind: kind, deadline: deadline, reply: reply)
            return
        }
        let command = KVCommand(session: session, timestampMillis: wallMillis(), operation: operation)
        do {
            let receipt = try node.propose(command.encoded())
            requests.addWrite(PendingWrite(term: receipt.term, kind: kind, deadline: deadline, reply: reply), at: receipt.index)
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
        return .notLeader(leader, address: leader.flatMap { clientAddresses[$0] })
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
            propose(
                operation, session: nil, kind: .internalCommand, deadline: now + settings.requestTimeoutMillis, routing: nil,
                reply: .none)
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
