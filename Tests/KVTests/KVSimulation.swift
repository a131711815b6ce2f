import KVStore
import Linearizability
import RaftCore

@testable import KVDaemon

/// Everything one seed decides before the run: cluster size, Raft and driver limits, the fault mix.
struct KVSimParameters: CustomStringConvertible {
    static let tickMillis: UInt64 = 50
    var nodeCount: Int
    var raft: RaftConfiguration
    var snapshotEntries: UInt64
    var safetyTicks: Int
    var livenessTicksMax = 1_200
    /// Per mille of messages (peer and client).
    var lossPerMille: Int
    var duplicatePerMille: Int
    var delayMaxTicks: Int
    var longDelayPerMille: Int
    /// Per mille per tick.
    var crashPerMille: Int
    var pausePerMille: Int
    var partitionPerMille: Int
    var kvClients: Int
    var lockClients: Int
    var clientPausePerMille: Int
    /// The leader's lease checkpoint interval: sometimes shorter than the lock clients' keepalive
    /// period (so leases are checkpointed between renewals), sometimes longer (so they never are).
    var leaseCheckpointMillis: UInt64
    /// Chance per tick that the operator starts replacing a voter (remove, add back as a learner,
    /// promote) when no change is under way; 0 in a quarter of the seeds.
    var membershipPerMille: Int

    init(seed: UInt64, safetyTicks: Int) {
        var random = SplitMix64(seed: seed ^ 0x4B56_5349_4D00)
        nodeCount = seed % 2 == 0 ? 3 : 5
        var raft = RaftConfiguration(id: NodeID(1))
        raft.electionTimeoutTicks = 10
        raft.heartbeatIntervalTicks = 1
        raft.entriesPerAppendMax = random.within(2...16)
        raft.bytesPerAppendMax = random.within(300...4_000)
        raft.inflightMessagesMax = random.within(2...8)
        raft.snapshotChunkBytes = random.within(100...2_000)
        raft.applyEntriesPerReadyMax = random.within(1...16)
        raft.checkQuorum = random.chance(850)
        self.raft = raft
        snapshotEntries = UInt64(random.within(10...80))
        self.safetyTicks = safetyTicks
        lossPerMille = random.below(100)
        duplicatePerMille = random.below(60)
        delayMaxTicks = random.within(1...3)
        longDelayPerMille = random.below(30)
        crashPerMille = random.within(1...8)
        pausePerMille = random.below(6)
        partitionPerMille = random.within(1...8)
        kvClients = random.within(2...4)
        lockClients = random.within(2...3)
        clientPausePerMille = random.within(5...25)
        // Drawn last, so that the earlier draws of every kept seed stay as they were; small, so
        // that snapshot transfers still happen in short runs.
        self.raft.compactionHoldEntriesMax = random.within(0...40)
        leaseCheckpointMillis = UInt64(random.within(10...40)) * Self.tickMillis
        // Drawn after every earlier parameter, for the same reason.
        membershipPerMille = random.below(4)
    }

    var description: String {
        "nodes=\(nodeCount) entries/append=\(raft.entriesPerAppendMax) bytes/append=\(raft.bytesPerAppendMax) "
            + "inflight=\(raft.inflightMessagesMax) chunk=\(raft.snapshotChunkBytes) apply/ready=\(raft.applyEntriesPerReadyMax) "
            + "checkQuorum=\(raft.checkQuorum) snapshotEvery=\(snapshotEntries); loss=\(lossPerMille)‰ dup=\(duplicatePerMille)‰ "
            + "delay≤\(delayMaxTicks) long=\(longDelayPerMille)‰ crash=\(crashPerMille)‰ pause=\(pausePerMille)‰ "
            + "partition=\(partitionPerMille)‰; clients kv=\(kvClients) lock=\(lockClients) pause=\(clientPausePerMille)‰; "
            + "leaseCheckpoint=\(leaseCheckpointMillis)ms membership=\(membershipPerMille)‰"
    }
}

/// A violated check, with what is needed to replay it.
struct KVSimViolation: Error, CustomStringConvertible {
    var check: String
    var detail: String
    var seed: UInt64 = 0
    var tick: UInt64 = 0
    var parameters = ""
    var recentEvents: [String] = []

    init(_ check: String, _ detail: String) {
        self.check = check
        self.detail = detail
    }

    var description: String {
        ([
            "KV simulation seed \(seed) violated \"\(check)\" at tick \(tick): \(detail)", "parameters: \(parameters)",
            "last events:",
        ] + recentEvents.map { "  \($0)" } + [
            "replay: KV_SIM_SEEDS=1 KV_SIM_FIRST_SEED=\(seed) swift test --filter KVSimulationTests"
        ]).joined(separator: "\n")
    }
}

/// One node: the production `RaftDriver` while it runs, its simulated disk while it is down.
final class KVSimNode {
    let id: NodeID
    var driver: RaftDriver?
    var storage = KVSimStorage()
    var pausedUntil: UInt64 = 0
    var restartAt: UInt64 = 0
    var restarts: UInt64 = 0
    var wallOffsetMillis: UInt64
    /// Inputs waiting for this node's Raft loop, oldest first (the daemon's mailbox).
    var inputs: [LoopInput] = []
    /// The applied index the simulator has recorded for this node.
    var recordedApplied: LogIndex = .zero
    /// The state database file: it survives crashes (SQLite's WAL with `synchronous=NORMAL` loses
    /// nothing in a process crash), as in production, where it is the snapshot.
    let statePath: String

    init(id: NodeID, wallOffsetMillis: UInt64, statePath: String) {
        self.id = id
        self.wallOffsetMillis = wallOffsetMillis
        self.statePath = statePath
    }

    func isPaused(at tick: UInt64) -> Bool { pausedUntil > tick }
}

/// A seeded, deterministic cluster of production `RaftDriver`s (TigerBeetle style): the
/// simulator owns the network, the disks and the clock (1 tick = one 50 ms heartbeat, driving
/// both the monotonic and the wall clock), and runs clients against it whose histories are
/// checked at the end (see `KVSimulation+Checks`).
final class KVSimulation {
    enum Packet {
        case peer(Message)
        case request(client: Int, node: NodeID, request: Int, arguments: [[UInt8]])
        case reply(client: Int, request: Int, reply: Reply)
    }

    struct InFlight {
        var packet: Packet
        var deliverAt: UInt64
        var sequence: UInt64
    }

    struct AppliedEntry {
        var entry: Entry
        var firstAppliedTick: UInt64
    }

    let seed: UInt64
    let parameters: KVSimParameters
    var random: SplitMix64
    var nodes: [KVSimNode] = []
    var clients: [KVSimClient] = []
    var now: UInt64 = 0
    var faultsEnabled = true
    var inFlight: [InFlight] = []
    var sendSequence: UInt64 = 0
    var cut: Set<[NodeID]> = []
    var partitionEndsAt: UInt64 = 0
    var outgoing: [Message] = []
    let outbox = KVSimOutbox()
    var requestOwner: [Int: Int] = [:]
    /// Requests delivered to a node that did not lead then (served by forwarding, or redirected).
    var requestsAtFollowers: Set<Int> = []
    var nextRequest = 0
    /// The membership change the operator is making, if any (one at a time, as the README's
    /// runbook does).
    var membershipStep: MembershipStep?
    /// Every entry some node applied from the log, by index, with the tick it was first applied.
    var applied: [UInt64: AppliedEntry] = [:]
    /// The shared clock of the client histories: one step per call and per reply.
    var historyClock: Int64 = 0
    var kvHistory = HistoryRecorder<KVModel<String, String>.Input, KVModel<String, String>.Output>()
    var stats = KVSimStats()
    var trace: [String] = []
    /// A client saw a reply no correct server gives; thrown at the end of the tick.
    var clientViolation: KVSimViolation?

    /// A private directory for the nodes' state databases, removed when the simulation ends.
    let directory: String

    deinit { KVSimulation.removeDirectory(directory) }

    init(seed: UInt64, safetyTicks: Int = 600) {
        self.seed = seed
        parameters = KVSimParameters(seed: seed, safetyTicks: safetyTicks)
        random = SplitMix64(seed: seed)
        directory = KVSimulation.makeDirectory(seed: seed)
        for number in 1...parameters.nodeCount {
            nodes.append(
                KVSimNode(
                    id: NodeID(UInt64(number)), wallOffsetMillis: UInt64(random.below(5_000)),
                    statePath: "\(directory)/state-\(number).sqlite"))
        }
        let lockNames = ["L0", "L1"]
        for number in 0..<(parameters.kvClients + parameters.lockClients) {
            let lock = number >= parameters.kvClients ? lockNames[number % 2] : nil
            clients.append(KVSimClient(id: number, lock: lock, target: nodes[number % nodes.count].id))
        }
    }

    var nowMillis: UInt64 { now * KVSimParameters.tickMillis }
    var bootstrap: ClusterMembership { ClusterMembership(voters: Set(nodes.map(\.id))) }

    /// Runs the safety phase, then the liveness phase, then every check.
    func run() throws(KVSimViolation) -> KVSimStats {
        do {
            note("seed \(seed): \(parameters)")
            for node in nodes { try start(node) }
            for _ in 0..<parameters.safetyTicks { try step() }
            try runLiveness()
            try checkAll()
        } catch {
            var violation = error
            violation.seed = seed
            violation.tick = now
            violation.parameters = parameters.description
            violation.recentEvents = trace
            throw violation
        }
        stats.ticks = now
        return stats
    }

    /// One tick: faults, restarts, node timers and deliveries queued as loop inputs, the nodes'
    /// loops, clients.
    func step() throws(KVSimViolation) {
        now += 1
        if faultsEnabled { injectFaults() }
        changeMembership()
        for node in nodes where node.driver == nil && node.restartAt <= now { try start(node) }
        for node in nodes where node.driver != nil && !node.isPaused(at: now) { node.inputs.append(.tick) }
        try deliverDue()
        for node in nodes where !node.isPaused(at: now) { try runLoop(node) }
        for client in clients { client.step(self) }
        if let clientViolation { throw clientViolation }
    }

    /// Runs `node`'s Raft loop as the daemon's does: each iteration hands `RaftDriver.process`
    /// the inputs that queued up since the last one. How many that is the seed decides: all of
    /// them (the loop was busy, say in an fsync, while they arrived) or only the first few (it
    /// woke up in between), so that group commit, and ticks, messages and commands sharing one
    /// `Ready` cycle, all happen.
    func runLoop(_ node: KVSimNode) throws(KVSimViolation) {
        var iterations = 0
        while let driver = node.driver, !node.inputs.isEmpty || driver.hasPendingWork {
            iterations += 1
            guard iterations <= Self.loopIterationsPerTickMax else {
                throw KVSimViolation("Driver runs", "node \(node.id) still has work after \(iterations - 1) loop iterations")
            }
            let queued = node.inputs.count
            let count = queued == 0 || random.chance(500) ? queued : random.within(1...queued)
            let batch = Array(node.inputs.prefix(count))
            node.inputs.removeFirst(count)
            let rejected: [StepError]
            do { rejected = try driver.process(batch) } catch {
                guard node.storage.tap.crashedInWrite else {
                    throw KVSimViolation("Driver runs", "node \(node.id) stopped: \(error)")
                }
                // The scheduled crash in the middle of a `Ready`: what was sent before it is out.
                node.storage.tap.crashedInWrite = false
                stats.crashesBeforeWrite += 1
                try afterDriverCall(node)
                crash(node, during: "just before a write of entries")
                return
            }
            if let first = rejected.first {
                throw KVSimViolation("Valid messages", "node \(node.id) refused a peer message: \(first)")
            }
            try afterDriverCall(node)
        }
    }

    /// More loop iterations than this in one tick means a driver that never runs out of work.
    static let loopIterationsPerTickMax = 10_000

    /// Heals everything and lets every client finish; then every node must converge.
    func runLiveness() throws(KVSimViolation) {
        faultsEnabled = false
        cut = []
        note("liveness phase: healed, clients finish their last operation")
        for node in nodes { node.pausedUntil = min(node.pausedUntil, now) }
        for client in clients { client.finishing = true }
        let deadline = now + UInt64(parameters.livenessTicksMax)
        while now < deadline {
            try step()
            if clients.allSatisfy(\.isDone), !membershipChangeUnderWay, isConverged { return }
        }
        let busy = clients.filter { !$0.isDone }.map { "client \($0.id): \($0.currentDescription)" }
        let leases = nodes.compactMap { try? $0.driver?.machine.allLeases().map(\.id) }.first ?? []
        throw KVSimViolation(
            "Liveness", "not converged \(parameters.livenessTicksMax) ticks after healing; busy: \(busy); leases left: \(leases); "
                + "membership change: \(membershipStep.map { "\($0)" } ?? "none"); "
                + "applied: \(nodes.map { "\($0.id)=\($0.driver?.machine.appliedIndex.rawValue ?? 0)" })")
    }

    /// Every node runs, one leader leads, every node applied everything it committed, and no
    /// lease is left: nobody keeps one alive any more, so each must expire (leases do not live
    /// forever across failovers).
    var isConverged: Bool {
        let drivers = nodes.compactMap(\.driver)
        guard drivers.count == nodes.count, let leader = drivers.first(where: { $0.status.role == .leader }) else {
            return false
        }
        let commit = drivers.map { $0.status.commitIndex }.max() ?? .zero
        guard (try? leader.machine.allLeases().isEmpty) == true else { return false }
        return drivers.allSatisfy { $0.machine.appliedIndex == commit && $0.status.lastLogIndex == commit }
    }

    // MARK: Nodes

    func start(_ node: KVSimNode) throws(KVSimViolation) {
        var configuration = parameters.raft
        configuration.id = node.id
        var settings = RaftDriver.Settings(
            clientAddresses: Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, "sim:\($0.id)") }), clusterID: "sim")
        settings.requestTimeoutMillis = 2_000
        settings.lockWaitMaxMillis = 3_000
        settings.snapshotEntries = parameters.snapshotEntries
        settings.leaseCheckpointMillis = parameters.leaseCheckpointMillis
        node.storage.tap.restoredUpTo = .zero
        do {
            var options = SQLiteConnection.Options()
            options.synchronous = .normal
            let machine = try KVStateMachine(database: try SQLiteConnection(path: node.statePath, options: options))
            let wallOffset = node.wallOffsetMillis
            node.driver = try RaftDriver(
                configuration: configuration, bootstrap: bootstrap, settings: settings, storage: node.storage,
                machine: machine, seed: seed &* 0x9E37_79B9 &+ node.id.rawValue &+ (node.restarts << 20),
                metrics: DaemonMetrics(), send: { [unowned self] messages in self.outgoing.append(contentsOf: messages) },
                monotonicMillis: { [unowned self] in self.nowMillis },
                wallMillis: { [unowned self] in self.nowMillis + wallOffset })
            node.recordedApplied = machine.appliedIndex
        } catch {
            throw KVSimViolation("Driver starts", "node \(node.id): \(error)")
        }
        if now > 0 { note("restart \(node.id) (applied \(node.recordedApplied) from its snapshot)") }
    }

    /// Crashes `node`: unsynced log writes are lost, and so is every client request it held and
    /// any snapshot it was receiving; its state database survives.
    func crash(_ node: KVSimNode, during moment: String = "between events") {
        guard let driver = node.driver, var storage = driver.storage as? KVSimStorage else { return }
        storage.crash()
        storage.tap.crashAtNextEntryWrite = false
        node.storage = storage
        node.driver = nil
        node.inputs = []
        node.restarts += 1
        node.restartAt = now + UInt64(random.within(5...60))
        stats.crashes += 1
        note("crash \(node.id) \(moment) (\(driver.status.role), term \(driver.status.currentTerm)); back at tick \(node.restartAt)")
    }

    /// After any call into a driver: ship its messages and replies, record what it applied.
    func afterDriverCall(_ node: KVSimNode) throws(KVSimViolation) {
        let messages = outgoing
        outgoing = []
        for message in messages { transmit(.peer(message), from: message.from, to: message.to) }
        // The driver keeps requests in dictionaries, whose order changes from process to process:
        // sort, so that a seed replays exactly.
        for (request, reply) in outbox.drain().sorted(by: { $0.request < $1.request }) {
            guard let client = requestOwner.removeValue(forKey: request) else { continue }
            transmit(.reply(client: client, request: request, reply: reply), from: node.id, to: nil)
        }
        try recordApplied(node)
    }

    /// Records the entries `node` applied since last time, checking that every node applies the
    /// same entry at each index (State Machine Safety, §5.4.3).
    func recordApplied(_ node: KVSimNode) throws(KVSimViolation) {
        guard let driver = node.driver, let storage = driver.storage as? KVSimStorage else { return }
        let appliedIndex = driver.machine.appliedIndex
        let restored = storage.tap.restoredUpTo
        storage.tap.restoredUpTo = .zero
        if restored > .zero { stats.snapshotsInstalled += 1 }
        var index = node.recordedApplied.next
        while index <= appliedIndex {
            defer { index = index.next }
            if index <= restored { continue }
            guard let entry = storage.entry(at: index) else {
                throw KVSimViolation("Applied entries are stored", "node \(node.id) applied \(index) but holds no entry there")
            }
            if let known = applied[index.rawValue] {
                guard known.entry == entry else {
                    throw KVSimViolation(
                        "State Machine Safety", "node \(node.id) applied \(entry.term)/\(index), another node \(known.entry.term)/\(index)")
                }
            } else {
                applied[index.rawValue] = AppliedEntry(entry: entry, firstAppliedTick: now)
            }
        }
        node.recordedApplied = max(node.recordedApplied, appliedIndex)
    }

    // MARK: Network

    /// Puts a packet on the wire. `to == nil` is a reply to a client (clients are never partitioned).
    func transmit(_ packet: Packet, from: NodeID?, to: NodeID?) {
        if let from, let to, cut.contains([from, to]) { return }
        if faultsEnabled && random.chance(parameters.lossPerMille) {
            stats.lostMessages += 1
            return
        }
        enqueue(packet)
        if faultsEnabled && random.chance(parameters.duplicatePerMille) { enqueue(packet) }
    }

    private func enqueue(_ packet: Packet) {
        var delay = random.within(1...parameters.delayMaxTicks)
        if faultsEnabled && random.chance(parameters.longDelayPerMille) { delay = random.within(5...30) }
        sendSequence += 1
        inFlight.append(InFlight(packet: packet, deliverAt: now + UInt64(delay), sequence: sendSequence))
    }

    /// Delivers every packet due now: to a node's loop inputs, or to a client. A paused node's
    /// packets wait in its socket buffer.
    func deliverDue() throws(KVSimViolation) {
        var due: [InFlight] = []
        var waiting: [InFlight] = []
        for item in inFlight {
            if item.deliverAt <= now, !isHeld(item.packet) { due.append(item) } else { waiting.append(item) }
        }
        inFlight = waiting
        due.sort { ($0.deliverAt, $0.sequence) < ($1.deliverAt, $1.sequence) }
        for item in due { try deliver(item.packet) }
    }

    private func isHeld(_ packet: Packet) -> Bool {
        switch packet {
        case .peer(let message): return node(message.to)?.isPaused(at: now) == true
        case .request(_, let id, _, _): return node(id)?.isPaused(at: now) == true
        case .reply: return false
        }
    }

    func node(_ id: NodeID) -> KVSimNode? { nodes.first { $0.id == id } }

    private func deliver(_ packet: Packet) throws(KVSimViolation) {
        switch packet {
        case .peer(let message):
            guard let node = node(message.to), node.driver != nil, !cut.contains([message.from, message.to]) else { return }
            node.inputs.append(.peerMessages([message]))
        case .request(let client, let id, let request, let arguments):
            guard let node = node(id), node.driver != nil else { return }
            let command: ClientCommand
            do { command = try CommandParser.parse(arguments) } catch {
                throw KVSimViolation("Client requests parse", "\(arguments.map { String(decoding: $0, as: UTF8.self) }): \(error)")
            }
            requestOwner[request] = client
            if node.driver?.status.role != .leader { requestsAtFollowers.insert(request) }
            // Odd clients ask for redirects (docs/PROTOCOL.md, "Followers"), even ones are served by
            // whichever node they reach.
            let routing = CommandRouting(redirects: client % 2 == 1)
            node.inputs.append(.command(command, routing: routing, outbox.responder(for: request)))
        case .reply(let client, let request, let reply):
            if requestsAtFollowers.remove(request) != nil {
                if case .error = reply {} else { stats.answeredByFollowers += 1 }
            }
            clients[client].receive(reply, request: request, sim: self)
        }
    }

    /// Sends a client request to `node`; returns its id.
    func sendRequest(from client: Int, to node: NodeID, _ arguments: [[UInt8]]) -> Int {
        nextRequest += 1
        transmit(.request(client: client, node: node, request: nextRequest, arguments: arguments), from: nil, to: node)
        return nextRequest
    }

    /// The next instant of the history clock.
    func historyTime() -> Int64 {
        historyClock += 1
        return historyClock
    }

    func note(_ line: String) {
        trace.append("[\(now)] \(line)")
        if trace.count > 60 { trace.removeFirst(trace.count - 60) }
    }
}
