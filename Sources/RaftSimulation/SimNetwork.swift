import RaftCore

/// A directed link between two servers.
struct Link: Hashable, Sendable {
    var from: NodeID
    var to: NodeID
}

/// The simulated network: every message in flight with the tick it is due, and the set of
/// directed links a partition currently cuts. Loss, duplication and delay are decided when a
/// message is sent; a cut link drops messages both when sent and when due.
struct SimNetwork {
    struct InFlight {
        var message: Message
        var deliverAt: UInt64
        /// Send order, to break ties between messages due at the same tick deterministically.
        var sequence: UInt64
        var isDuplicate: Bool
    }

    private(set) var inFlight: [InFlight] = []
    private(set) var cut: Set<Link> = []
    /// A human-readable name of the current partition, for traces.
    private(set) var partitionName: String?
    private var sequence: UInt64 = 0

    /// Whether `from` can currently reach `to`.
    func canDeliver(from: NodeID, to: NodeID) -> Bool { !cut.contains(Link(from: from, to: to)) }

    /// Queues `message` to arrive after `delay` ticks.
    mutating func enqueue(_ message: Message, now: UInt64, delay: Int, isDuplicate: Bool) {
        sequence += 1
        inFlight.append(
            InFlight(message: message, deliverAt: now + UInt64(delay), sequence: sequence, isDuplicate: isDuplicate))
    }

    /// Removes and returns every message due at or before `now`, in due-then-send order.
    mutating func takeDue(now: UInt64, holdingFor held: (NodeID) -> Bool) -> [InFlight] {
        var due: [InFlight] = []
        var waiting: [InFlight] = []
        waiting.reserveCapacity(inFlight.count)
        for item in inFlight {
            // A paused server's messages wait in its socket buffer until it runs again.
            if item.deliverAt <= now && !held(item.message.to) { due.append(item) } else { waiting.append(item) }
        }
        inFlight = waiting
        due.sort { ($0.deliverAt, $0.sequence) < ($1.deliverAt, $1.sequence) }
        return due
    }

    /// Cuts every link in `links` (and only those), naming the partition for traces.
    mutating func partition(_ links: Set<Link>, name: String) {
        cut = links
        partitionName = name
    }

    /// Restores every link.
    mutating func heal() {
        cut = []
        partitionName = nil
    }

    /// How many messages are in flight.
    var count: Int { inFlight.count }
}
