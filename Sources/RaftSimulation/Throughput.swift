public import RaftCore

/// A fault-free 3-node cluster with no I/O at all (no storage, instant delivery), to measure how
/// many proposals per second the Raft core itself can commit: the ceiling the core puts on kvd.
public struct ThroughputCluster {
    private var nodes: [RaftNode]
    private var inbox: [Message] = []
    /// Commands of `commandBytes` bytes each.
    public let commandBytes: Int
    /// Entries applied by the leader so far.
    public private(set) var committedProposals = 0

    /// Builds the cluster and elects node 1.
    public init(commandBytes: Int = 64) throws(ConfigurationError) {
        self.commandBytes = commandBytes
        let membership = ClusterMembership(voters: [1, 2, 3])
        nodes = try (1...3).map { (id: UInt64) throws(ConfigurationError) -> RaftNode in
            try RaftNode(
                configuration: RaftConfiguration(id: NodeID(id)), state: PersistentState(), bootstrap: membership,
                seed: id)
        }
        nodes[0].campaign()
        pump()
    }

    /// Proposes `batch` commands at the leader, then runs the cluster until it is quiet.
    /// Returns false if node 1 is not leading (it always is without faults).
    public mutating func proposeBatch(_ batch: Int) -> Bool {
        let command = [UInt8](repeating: 7, count: commandBytes)
        for _ in 0..<batch {
            guard (try? nodes[0].propose(command)) != nil else { return false }
        }
        pump()
        return true
    }

    /// Hands out `Ready`s and delivers messages until nothing is left to do.
    private mutating func pump() {
        var busy = true
        while busy {
            busy = false
            for position in nodes.indices where nodes[position].hasReady {
                busy = true
                let ready = nodes[position].takeReady()
                inbox.append(contentsOf: ready.messagesBeforePersist + ready.messages)
                if position == 0 {
                    for entry in ready.committedEntries {
                        if case .command = entry.payload { committedProposals += 1 }
                    }
                }
                nodes[position].advance(ready)
            }
            let messages = inbox
            inbox = []
            for message in messages {
                busy = true
                try? nodes[Int(message.to.rawValue) - 1].step(message)
            }
        }
    }
}

/// Runs many seeds and summarises them.
public enum SimulationRunner {
    /// Runs seeds `first ..< first + count`, stopping at the first failure.
    public static func run(
        first: UInt64, count: Int, safetyTicks: Int = 600, progress: ((UInt64) -> Void)? = nil
    ) -> (stats: SimulationStats, seedsRun: Int, failure: SimulationFailure?) {
        var total = SimulationStats()
        for offset in 0..<count {
            let seed = first &+ UInt64(offset)
            do {
                total.add(try Simulation(seed: seed, safetyTicks: safetyTicks).run())
            } catch {
                return (total, offset + 1, error)
            }
            progress?(seed)
        }
        return (total, count, nil)
    }
}
