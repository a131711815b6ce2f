import RaftCore

/// A seeded, deterministic Raft cluster (after TigerBeetle's simulator): production `RaftNode`s
/// driven by a simulated network, disk and clock, every fault drawn from one seed. A safety phase
/// runs the cluster under faults and checks the invariants after every event; a liveness phase
/// then heals everything and requires a new commit within a bounded number of ticks.
public final class Simulation {
    /// The seed every decision of this run is drawn from.
    public let seed: UInt64
    /// What the seed decided before the run: cluster size, Raft limits, fault mix.
    public let parameters: SimulationParameters
    /// The liveness phase fails if no proposal is acknowledged within this many ticks.
    public let livenessTicksMax: Int

    var random: SplitMix64
    var servers: [SimServer] = []
    var network = SimNetwork()
    var checker = InvariantChecker()
    var events = EventLog(capacity: 40)
    var stats = SimulationStats()
    /// The current tick.
    var now: UInt64 = 0
    var faultsEnabled = true
    var partitionEndsAt: UInt64 = 0
    var nextOperation: UInt64 = 1
    let bootstrap: ClusterMembership
    /// The writes proposed in the liveness phase, and whether any of them was acknowledged.
    var livenessOperations: Set<UInt64> = []
    var livenessAcknowledged = false

    /// Prepares the run for `seed`; `safetyTicks` sets its length. `trace`, if given, receives
    /// every event as a line of text as it happens.
    public init(seed: UInt64, safetyTicks: Int = 600, trace: (@Sendable (String) -> Void)? = nil) {
        self.seed = seed
        self.parameters = SimulationParameters(seed: seed, safetyTicks: safetyTicks)
        self.livenessTicksMax = 40 * parameters.raft.electionTimeoutTicks
        self.random = SplitMix64(seed: seed)
        let members = Set((1...parameters.nodeCount).map { NodeID(UInt64($0)) })
        let voters: Set<NodeID> = parameters.votersMin == 1 ? [NodeID(1)] : members
        self.bootstrap = ClusterMembership(voters: voters, learners: members.subtracting(voters))
        events.echo = trace
        let total = parameters.nodeCount + parameters.spareCount
        servers = (1...total).map { SimServer(id: NodeID(UInt64($0)), configuration: parameters.raft) }
    }

    /// Runs both phases. Throws the first invariant violation with everything needed to replay it.
    public func run() throws(SimulationFailure) -> SimulationStats {
        do {
            record(.phase("seed \(seed): \(parameters)"))
            for server in servers { try restart(server) }
            stats.restarts = 0  // The first start of every server is not a restart.
            record(.phase("safety phase: \(parameters.safetyTicks) ticks with faults"))
            for _ in 0..<parameters.safetyTicks { try step() }
            try runLiveness()
        } catch {
            throw SimulationFailure(
                seed: seed, nodeCount: parameters.nodeCount, tick: now, invariant: error.invariant, detail: error.detail,
                parameters: parameters.description, recentEvents: events.lines)
        }
        stats.ticks = now
        stats.leaderTerms = checker.leaders.count
        stats.committedIndex = checker.maxCommitted.rawValue
        return stats
    }

    /// One tick of simulated time: faults, client requests, message deliveries, node ticks and
    /// snapshots, with the invariants checked after each of them.
    func step() throws(InvariantViolation) {
        now += 1
        if faultsEnabled { try injectFaults() }
        try restartDue()
        try clientRequests()
        try deliverDue()
        for server in servers.shuffled(using: &random) where server.isRunning && !server.isPaused(at: now) {
            server.node?.tick()
            try drive(server)
            try checkAll()
        }
        try takeSnapshots()
        try checkCommittedEntrySurvivesElections()
    }

    /// Heals the network, restarts and resumes every server, stops faults, and requires a leader
    /// to commit a new proposal within `livenessTicksMax` ticks.
    func runLiveness() throws(InvariantViolation) {
        faultsEnabled = false
        network.heal()
        record(.phase("liveness phase: healed, no faults, \(livenessTicksMax) ticks to commit"))
        for server in servers {
            server.pausedUntil = 0
            if !server.isRunning { try restart(server) }
            server.crashPoint = nil
            server.crashAt = nil
        }
        try checkAll()
        let start = now
        while now - start < UInt64(livenessTicksMax) {
            try step()
            if livenessAcknowledged {
                stats.livenessTicks = Int(now - start)
                return
            }
            try proposeForLiveness(elapsed: now - start)
        }
        let roles = servers.compactMap { server in
            server.node.map { "\(server.id):\($0.roleName.rawValue)/t\($0.status.currentTerm)/c\($0.status.commitIndex)" }
        }
        throw InvariantViolation(
            invariant: "Liveness",
            detail: "no proposal was acknowledged within \(livenessTicksMax) ticks of healing; nodes: \(roles.joined(separator: " "))")
    }

    /// Every election timeout, proposes a fresh write at the current leader, if there is one.
    private func proposeForLiveness(elapsed: UInt64) throws(InvariantViolation) {
        guard elapsed % UInt64(parameters.raft.electionTimeoutTicks) == 1 else { return }
        guard let leader = servers.last(where: { $0.node?.isLeader == true }) else { return }
        let operation = nextOperation
        livenessOperations.insert(operation)
        try propose(at: leader, key: 0)
    }

    /// Checks every running server after an event.
    func checkAll() throws(InvariantViolation) {
        let leaders = servers.filter { $0.node?.isLeader == true }
        for server in servers where server.isRunning {
            let before = server.seen
            try checker.observe(server, leadersNow: leaders)
            if server.seen.role != before.role || server.seen.term != before.term {
                record(.roleChange(server.id, server.seen.role, server.seen.term))
                if server.seen.role == .leader, faultsEnabled, server.crashAt == nil,
                    random.chance(perMille: parameters.crashNewLeaderPerMille)
                {
                    server.crashAt = now + UInt64(random.within(1...8))
                }
            }
        }
    }

    func record(_ event: SimEvent) { events.record(event, tick: now) }

    func server(_ id: NodeID) -> SimServer? {
        let position = Int(id.rawValue) - 1
        return servers.indices.contains(position) ? servers[position] : nil
    }
}

/// What one run did (counts of events of each kind), for the summary lines of the test and of
/// `raft-sim`; `add` sums runs. A run that acknowledged no writes or served no reads proved little.
public struct SimulationStats: Sendable {
    // Counts, named after what they count; `committedIndex` sums each run's highest commit.
    public var ticks: UInt64 = 0
    public var messages = 0
    public var deliveredMessages = 0
    public var acknowledgedWrites = 0
    public var servedReads = 0
    public var failedReads = 0
    public var crashes = 0
    public var restarts = 0
    public var snapshots = 0
    public var membershipChanges = 0
    public var transfers = 0
    public var partitions = 0
    public var pauses = 0
    /// Reports that a peer is unreachable (true ones after crashes, and false alarms).
    public var unreachableReports = 0
    public var leaderTerms = 0
    public var committedIndex: UInt64 = 0
    /// Ticks the liveness phase needed to commit a new proposal.
    public var livenessTicks = 0

    /// All counts zero.
    public init() {}

    /// Adds another run's counts to these.
    public mutating func add(_ other: SimulationStats) {
        ticks += other.ticks
        messages += other.messages
        deliveredMessages += other.deliveredMessages
        acknowledgedWrites += other.acknowledgedWrites
        servedReads += other.servedReads
        failedReads += other.failedReads
        crashes += other.crashes
        restarts += other.restarts
        snapshots += other.snapshots
        membershipChanges += other.membershipChanges
        transfers += other.transfers
        partitions += other.partitions
        pauses += other.pauses
        unreachableReports += other.unreachableReports
        leaderTerms += other.leaderTerms
        committedIndex += other.committedIndex
        livenessTicks = max(livenessTicks, other.livenessTicks)
    }

    /// The counts on one line.
    public var summary: String {
        "ticks=\(ticks) messages=\(messages) delivered=\(deliveredMessages) acked-writes=\(acknowledgedWrites) "
            + "reads=\(servedReads) (failed \(failedReads)) crashes=\(crashes) restarts=\(restarts) "
            + "snapshots=\(snapshots) membership=\(membershipChanges) transfers=\(transfers) partitions=\(partitions) "
            + "pauses=\(pauses) unreachable-reports=\(unreachableReports) leader-terms=\(leaderTerms) committed=\(committedIndex) max-liveness-ticks=\(livenessTicks)"
    }
}

/// An invariant violation found by a seed, with what is needed to understand and replay it.
public struct SimulationFailure: Error, CustomStringConvertible, Sendable {
    /// The seed that replays the failure; `nodeCount` members at the start; `tick` when it failed.
    public var seed: UInt64
    public var nodeCount: Int
    public var tick: UInt64
    /// The name of the violated invariant, and the facts that show the violation.
    public var invariant: String
    public var detail: String
    /// The seed's parameters (`SimulationParameters.description`).
    public var parameters: String
    /// The last events before the violation, oldest first.
    public var recentEvents: [String]

    /// The commands that replay exactly this run.
    public var replayCommands: [String] {
        [
            "RAFT_SIM_SEEDS=1 RAFT_SIM_FIRST_SEED=\(seed) swift test --filter RaftTests.SimulationTests",
            "swift run -c release raft-sim --seed \(seed) --trace",
        ]
    }

    /// The full report: seed, invariant, detail, parameters, recent events and replay commands.
    public var description: String {
        var lines = [
            "Raft simulation failed: seed \(seed), \(nodeCount) nodes, tick \(tick)",
            "invariant violated: \(invariant)",
            "detail: \(detail)",
            "parameters: \(parameters)",
            "last \(recentEvents.count) events:",
        ]
        lines += recentEvents.map { "  \($0)" }
        lines.append("replay with:")
        lines += replayCommands.map { "  \($0)" }
        return lines.joined(separator: "\n")
    }
}
