/// One Raft server as a deterministic state machine with no I/O (after etcd-io/raft).
///
/// The driver feeds it `tick()`s, peer messages (`step`), proposals and reads, and repeatedly
/// takes a `Ready` (see its contract), handles it and calls `advance`. Time exists only as
/// ticks and randomness only as the seeded generator passed at creation, so a run is replayed
/// exactly from its inputs.
public struct RaftNode: Sendable {
    public let configuration: RaftConfiguration
    public var id: NodeID { configuration.id }

    var log: RaftLog
    /// Figure 2's persistent state (with `log`).
    var currentTerm: Term
    var votedFor: NodeID?
    /// The leader of `currentTerm` as far as this node knows.
    var leaderID: NodeID?
    var role: Role

    /// Ticks since the last election-timer reset (follower and candidate), or since the last
    /// CheckQuorum round (leader).
    var electionElapsed = 0
    var randomizedElectionTimeout = 0
    /// Ticks since this node started; used to expire forwarded reads.
    var ticksElapsed: UInt64 = 0
    var random: SplitMix64

    /// A snapshot being received in chunks from the leader: which one, and how many bytes of it
    /// have been handed to the driver so far. The bytes themselves never live here.
    var incomingSnapshot: IncomingSnapshot?
    /// Chunks accepted since the last `Ready`, for the driver to write in order.
    var acceptedSnapshotChunks: [InstallSnapshot] = []
    /// A received snapshot to hand to the driver in the next `Ready`.
    var snapshotToInstall: Snapshot?

    var outbox: [Message] = []
    var readStates: [ReadState] = []
    /// Forwarded proposals refused since the last `Ready`.
    var refusedForwards: [RefusedForward] = []
    /// The highest forward id handled from each node (`admitForward`).
    var forwardsSeen: [NodeID: UInt64] = [:]
    /// Reads this follower forwarded to a leader and is waiting on.
    var forwardedReads: [ReadRequestID: ForwardedRead] = [:]

    /// The hard state last handed out for persistence.
    var lastHandedOutHardState: HardState
    /// Highest log index the driver confirmed durable; a leader counts itself only up to here.
    var persistedIndex: LogIndex
    var readyOutstanding = false
    /// The leader the driver reported as no longer answering (`peerStalled`): this follower
    /// campaigns as soon as its leader lease ends instead of at its randomized timeout.
    var stalledLeader: NodeID?

    enum Role: Sendable {
        case follower
        case preCandidate(votes: [NodeID: Bool])
        case candidate(votes: [NodeID: Bool])
        case leader(LeaderState)
    }

    struct ForwardedRead: Sendable {
        var leader: NodeID
        var sentAtTick: UInt64
    }

    /// Creates a node from what its storage holds.
    /// - Parameters:
    ///   - state: what `LogStorage.load()` returned.
    ///   - bootstrap: the membership to use while neither the log nor a snapshot names one.
    ///   - appliedIndex: the state machine's applied index. If `state` has a snapshot, the state
    ///     machine must already hold at least that snapshot.
    ///   - seed: seeds this node's election-timeout generator.
    public init(
        configuration: RaftConfiguration, state: PersistentState, bootstrap: ClusterMembership,
        appliedIndex: LogIndex = .zero, seed: UInt64
    ) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.log = try RaftLog(state: state, bootstrap: bootstrap, appliedIndex: appliedIndex)
        self.currentTerm = state.hardState.currentTerm
        self.votedFor = state.hardState.votedFor
        self.leaderID = nil
        self.role = .follower
        self.random = SplitMix64(seed: seed)
        self.persistedIndex = log.lastIndex
        self.lastHandedOutHardState = state.hardState
        resetElectionTimer()
    }

    // MARK: Reading state

    /// A summary of this node's state.
    public var status: RaftStatus {
        RaftStatus(
            id: id, role: roleName, currentTerm: currentTerm, votedFor: votedFor, leaderID: leaderID,
            commitIndex: log.committed, appliedIndex: log.applied, lastLogIndex: log.lastIndex,
            lastLogTerm: log.lastTerm, snapshotIndex: log.snapshotIndex, membership: log.membership,
            transferTarget: leaderState?.transfer?.target)
    }

    public var roleName: RaftRole {
        switch role {
        case .follower: return .follower
        case .preCandidate: return .preCandidate
        case .candidate: return .candidate
        case .leader: return .leader
        }
    }

    public var isLeader: Bool { roleName == .leader }

    /// The log entries held in memory (those after the latest snapshot).
    public var entries: [Entry] { log.entries }

    /// The term of the entry at `index`, if this node still holds it.
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }

    /// The point the log was last compacted at (or a snapshot installed at), if any.
    public var latestSnapshot: SnapshotMetadata? { log.snapshotMetadata }

    var leaderState: LeaderState? {
        if case .leader(let state) = role { return state }
        return nil
    }

    // MARK: Ready / advance

    /// Whether `takeReady()` has anything for the driver.
    public var hasReady: Bool {
        if !outbox.isEmpty || !readStates.isEmpty || !refusedForwards.isEmpty || snapshotToInstall != nil || log.hasUnstable { return true }
        if !acceptedSnapshotChunks.isEmpty { return true }
        if currentHardState != lastHandedOutHardState { return true }
        if log.hasEntriesToApply { return true }
        if let leader = leaderState, leader.replicationPending || leader.readRoundPending || leader.commitAnnouncementPending {
            return true
        }
        return false
    }

    /// Hands out everything the driver must do next. See `Ready` for the order in which it must
    /// be done; call `advance(_:)` afterwards and nothing else on this node in between.
    public mutating func takeReady() -> Ready {
        precondition(!readyOutstanding, "takeReady called twice without advance")
        flushLeaderOutput()
        var ready = Ready()
        let hardState = currentHardState
        let durableTerm = lastHandedOutHardState.currentTerm
        let termOrVoteChanged =
            hardState.currentTerm != lastHandedOutHardState.currentTerm
            || hardState.votedFor != lastHandedOutHardState.votedFor
        if hardState != lastHandedOutHardState {
            ready.hardState = hardState
            ready.mustSync = termOrVoteChanged
            lastHandedOutHardState = hardState
        }
        ready.snapshotChunks = acceptedSnapshotChunks
        acceptedSnapshotChunks = []
        ready.snapshot = snapshotToInstall
        snapshotToInstall = nil
        ready.entries = log.takeUnstable()
        if !ready.entries.isEmpty || ready.snapshot != nil { ready.mustSync = true }
        // A new term or vote must be durable before any message reveals it: then nothing leaves
        // early, not even AppendEntries of the durable term this node led when the batch began
        // (safe, but a rule without exceptions is easier to trust).
        if termOrVoteChanged {
            ready.messages = outbox
        } else {
            for message in outbox {
                if message.mayLeaveBeforePersist(durableTerm: durableTerm) {
                    ready.messagesBeforePersist.append(message)
                } else {
                    ready.messages.append(message)
                }
            }
        }
        outbox = []
        ready.committedEntries = log.entriesToApply(maxCount: configuration.applyEntriesPerReadyMax)
        if let last = ready.committedEntries.last { log.applying = last.index }
        ready.readStates = readStates
        readStates = []
        ready.refusedForwards = refusedForwards
        refusedForwards = []
        readyOutstanding = true
        return ready
    }

    /// Confirms that the driver persisted, sent and applied `ready`.
    public mutating func advance(_ ready: Ready) {
        precondition(readyOutstanding, "advance called without takeReady")
        readyOutstanding = false
        persistedIndex = log.unstableFrom.previous
        log.applied = log.applying
        withLeader { node, leader in node.maybeCommit(&leader) }
    }

    var currentHardState: HardState {
        HardState(currentTerm: currentTerm, votedFor: votedFor, commitIndex: log.committed)
    }

    // MARK: Inputs

    /// Advances logical time by one tick: election timeouts on followers and candidates;
    /// heartbeats, CheckQuorum and transfer timeouts on leaders.
    public mutating func tick() {
        ticksElapsed += 1
        expireForwardedReads()
        switch role {
        case .leader:
            tickLeader()
        case .follower, .preCandidate, .candidate:
            electionElapsed += 1
            if let stalled = stalledLeader, electionElapsed >= configuration.electionTimeoutTicks {
                stalledLeader = nil
                if case .follower = role, leaderID == stalled {
                    campaignAfterLeaderLoss(stalled)
                    return
                }
            }
            // A non-voter never campaigns, and its count keeps running: were it reset, the leader
            // lease (`inLeaderLease`) would start again without word from any leader, and a
            // promoted learner that has not received its promotion yet would go on ignoring the
            // votes of the voters that count it as one of them.
            if electionElapsed >= randomizedElectionTimeout, isVoter {
                electionElapsed = 0
                campaign()
            }
        }
    }

    /// Starts an election now, with PreVote first if configured (as when the timer fires).
    public mutating func campaign() {
        guard isVoter, !isLeader else { return }
        startElection(preVote: configuration.preVote, isLeadershipTransfer: false)
    }

    /// Handles one message from a peer. Throws, leaving the node unchanged, if the message is
    /// malformed; the driver should log and drop it.
    public mutating func step(_ message: Message) throws(StepError) {
        precondition(!readyOutstanding, "step called between takeReady and advance")
        try validate(message)
        guard admitTerm(of: message) else { return }
        switch message.body {
        case .requestVote(let request):
            handleRequestVote(message, request)
        case .requestVoteResponse(let response):
            handleVoteResponse(message, response)
        case .appendEntries(let request):
            recognizeLeader(message.from)
            handleAppendEntries(message, request)
        case .appendEntriesResponse(let response):
            try withLeaderThrowing { node, leader throws(StepError) in
                try node.handleAppendResponse(message, response, &leader)
            }
        case .installSnapshot(let request):
            recognizeLeader(message.from)
            handleInstallSnapshot(message, request)
        case .installSnapshotResponse(let response):
            withLeader { node, leader in node.handleSnapshotResponse(message, response, &leader) }
        case .timeoutNow:
            if isVoter, !isLeader { startElection(preVote: false, isLeadershipTransfer: true) }
        case .readIndexRequest(let request):
            handleReadIndexRequest(from: message.from, request)
        case .readIndexResponse(let response):
            handleReadIndexResponse(response)
        case .forwardedProposal(let proposal):
            handleForwardedProposal(from: message.from, proposal)
        case .forwardedProposalRefused(let refusal):
            handleForwardRefusal(refusal)
        }
    }

    var isVoter: Bool { log.membership.voters.contains(id) }

    mutating func send(_ to: NodeID, _ body: Message.Body, term: Term? = nil) {
        outbox.append(Message(from: id, to: to, term: term ?? currentTerm, body: body))
    }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        let spread = UInt64(configuration.electionTimeoutTicks)
        randomizedElectionTimeout = configuration.electionTimeoutTicks + Int(random.next() % spread)
    }

    /// Runs `body` on the leader state in place; does nothing unless this node leads. `body`
    /// must not change `role` (it may ask to step down through the returned leader state).
    @discardableResult
    mutating func withLeader<R>(_ body: (inout RaftNode, inout LeaderState) -> R) -> R? {
        guard case .leader(var leader) = role else { return nil }
        role = .follower  // Placeholder while `leader` is mutated without a copy.
        let result = body(&self, &leader)
        role = .leader(leader)
        if let reason = leader.stepDownRequested { stepDownAsLeader(reason) }
        return result
    }

    mutating func withLeaderThrowing<E: Error>(_ body: (inout RaftNode, inout LeaderState) throws(E) -> Void) throws(E) {
        guard case .leader(var leader) = role else { return }
        role = .follower
        defer {
            role = .leader(leader)
            if let reason = leader.stepDownRequested { stepDownAsLeader(reason) }
        }
        try body(&self, &leader)
    }
}
