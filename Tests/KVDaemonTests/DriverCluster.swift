import KVStore
import RaftCore
import Synchronization
import Testing

@testable import KVDaemon

/// Three (or more) `RaftDriver`s on in-memory storage, wired by a queue the test delivers from:
/// no threads, no clock but the test's, so every step is deterministic.
final class DriverCluster {
    var drivers: [NodeID: RaftDriver] = [:]
    /// Sent and not yet delivered.
    var queue: [Message] = []
    /// Messages for which this returns true are lost instead of delivered.
    var drop: (Message) -> Bool = { _ in false }
    /// Messages for which this returns true stay queued (delayed, not lost).
    var hold: (Message) -> Bool = { _ in false }
    var nowMillis: UInt64 = 1_000
    var ids: [NodeID]
    let settings: RaftDriver.Settings

    init(ids: [NodeID] = [1, 2, 3], tweak: (inout RaftDriver.Settings) -> Void = { _ in }) throws {
        self.ids = ids
        var settings = RaftDriver.Settings(
            clientAddresses: Dictionary(uniqueKeysWithValues: ids.map { ($0, "node\($0):6379") }), clusterID: "test")
        tweak(&settings)
        self.settings = settings
        let membership = ClusterMembership(voters: Set(ids))
        for id in ids {
            var configuration = RaftConfiguration(id: id)
            configuration.electionTimeoutTicks = 10
            let machine = try KVStateMachine(database: try SQLiteConnection.inMemory())
            drivers[id] = try RaftDriver(
                configuration: configuration, bootstrap: membership, settings: settings, storage: MemoryLogStorage(),
                machine: machine, seed: 0xF0 &+ id.rawValue, metrics: DaemonMetrics(),
                send: { [unowned self] messages in self.queue.append(contentsOf: messages) },
                monotonicMillis: { [unowned self] in self.nowMillis }, wallMillis: { [unowned self] in self.nowMillis })
        }
    }

    func driver(_ id: NodeID) throws -> RaftDriver { try #require(drivers[id]) }

    /// Starts node `id` as `kvd --join` does: no bootstrap membership, an empty log; it learns both
    /// from the leader once the cluster adds it.
    func startJoiner(_ id: NodeID) throws {
        var configuration = RaftConfiguration(id: id)
        configuration.electionTimeoutTicks = 10
        let machine = try KVStateMachine(database: try SQLiteConnection.inMemory())
        drivers[id] = try RaftDriver(
            configuration: configuration, bootstrap: ClusterMembership(voters: []), settings: settings,
            storage: MemoryLogStorage(), machine: machine, seed: 0xF0 &+ id.rawValue, metrics: DaemonMetrics(),
            send: { [unowned self] messages in self.queue.append(contentsOf: messages) },
            monotonicMillis: { [unowned self] in self.nowMillis }, wallMillis: { [unowned self] in self.nowMillis })
        ids.append(id)
    }

    var leader: NodeID? { ids.first { drivers[$0]?.status.role == .leader } }
    var followers: [NodeID] { ids.filter { $0 != leader } }

    /// Delivers queued messages (and whatever they cause) until only held ones are left.
    func deliverAll() throws {
        var rounds = 0
        while let position = queue.firstIndex(where: { !hold($0) }) {
            rounds += 1
            try #require(rounds < 100_000, "the network never went quiet")
            let message = queue.remove(at: position)
            guard !drop(message), let driver = drivers[message.to] else { continue }
            _ = try driver.process([.peerMessages([message])])
        }
    }

    /// One heartbeat interval passes on every node; then the network goes quiet.
    func tick(_ times: Int = 1) throws {
        for _ in 0..<times {
            nowMillis += settings.heartbeatMillis
            for id in ids { _ = try drivers[id]?.process([.tick]) }
            try deliverAll()
        }
    }

    /// Ticks until a leader has applied its term's no-op and every node applied it too.
    @discardableResult
    func electLeader() throws -> NodeID {
        for _ in 0..<200 {
            try tick()
            if let leader, let driver = drivers[leader], driver.machine.highestTerm == driver.status.currentTerm,
                ids.allSatisfy({ drivers[$0]?.status.leaderID == leader })
            {
                try tick(2)
                return leader
            }
        }
        throw DriverClusterError.noLeader
    }

    /// Sends one client command to `id`; its reply lands in the returned box (now or later).
    @discardableResult
    func send(_ arguments: [String], to id: NodeID, routing: CommandRouting = CommandRouting()) throws -> ReplyBox {
        let box = ReplyBox()
        let command = try CommandParser.parse(arguments.map { Array($0.utf8) })
        _ = try driver(id).process([.command(command, routing: routing, Responder { box.set($0) })])
        return box
    }

    /// Sends a command and delivers until it is answered (ticking, so that heartbeats carry the
    /// commit index to followers); fails after `ticksMax` ticks.
    func call(_ arguments: [String], at id: NodeID, routing: CommandRouting = CommandRouting(), ticksMax: Int = 50) throws -> Reply {
        let box = try send(arguments, to: id, routing: routing)
        try deliverAll()
        for _ in 0..<ticksMax {
            if let reply = box.reply { return reply }
            try tick()
        }
        return try #require(box.reply, "no reply to \(arguments) at node \(id)")
    }
}

enum DriverClusterError: Error { case noLeader }

/// Where a test's reply arrives; counts replies so that a second one is caught.
final class ReplyBox: Sendable {
    private let state = Mutex<(reply: Reply?, count: Int)>((nil, 0))
    var reply: Reply? { state.withLock { $0.reply } }
    var count: Int { state.withLock { $0.count } }
    func set(_ reply: Reply) { state.withLock { $0 = (reply, $0.count + 1) } }
}
