import RaftCore

/// The fault model: message loss, duplication and delay (which reorders), partitions, crashes
/// that lose unsynced writes (between events or in the middle of a `Ready`), and pauses.
extension Simulation {
    func injectFaults() throws(InvariantViolation) {
        if random.chance(perMille: parameters.crashPerMille) { crashSomeone() }
        for server in servers where server.isRunning && (server.crashAt ?? .max) <= now {
            crash(server, point: nil)
        }
        if random.chance(perMille: parameters.pausePerMille), let victim = random.pick(liveServers) {
            let ticks = random.within(5...40)
            victim.pausedUntil = now + UInt64(ticks)
            stats.pauses += 1
            record(.pause(victim.id, ticks: ticks))
            // Its peers' probes go unanswered: some of them are told it stalled (they act on it
            // only when their lease ends).
            for other in liveServers where other !== victim && random.chance(perMille: 500) {
                reportStalled(victim.id, to: other)
            }
        }
        if random.chance(perMille: parameters.falseUnreachablePerMille), let observer = random.pick(liveServers),
            let peer = random.pick(servers.filter { $0 !== observer })
        {
            // False evidence, e.g. a connection that broke while the peer lives, or a busy peer
            // taken for a stalled one: it must never cost safety.
            if random.chance(perMille: 500) {
                reportUnreachable(peer.id, to: observer)
            } else {
                reportStalled(peer.id, to: observer)
            }
        }
        if network.partitionName != nil, now >= partitionEndsAt {
            network.heal()
            record(.heal)
        } else if network.partitionName == nil, random.chance(perMille: parameters.partitionPerMille) {
            makePartition()
        }
    }

    /// Running, unpaused servers.
    var liveServers: [SimServer] { servers.filter { $0.isRunning && !$0.isPaused(at: now) } }

    private func crashSomeone() {
        guard let victim = random.pick(servers.filter(\.isRunning)) else { return }
        switch random.below(6) {
        case 0: victim.crashPoint = .afterPersist
        case 1: victim.crashPoint = .afterSend
        case 2: victim.crashPoint = .midInstall
        case 3: victim.crashPoint = .afterEarlySend
        default: crash(victim, point: nil)
        }
    }

    /// Restarts every crashed server whose downtime is over.
    func restartDue() throws(InvariantViolation) {
        for server in servers where !server.isRunning && server.restartAt <= now {
            try restart(server)
            try drive(server)
            try checkAll()
        }
    }

    /// Cuts links in one of five shapes, each lasting 10–120 ticks.
    private func makePartition() {
        let ids = servers.map(\.id).shuffled(using: &random)
        var cut: Set<Link> = []
        func cutBoth(_ a: NodeID, _ b: NodeID) {
            cut.insert(Link(from: a, to: b))
            cut.insert(Link(from: b, to: a))
        }
        let name: String
        switch random.below(5) {
        case 0:
            let split = random.within(1...(ids.count - 1))
            for a in ids[..<split] { for b in ids[split...] { cutBoth(a, b) } }
            name = "halves \(ids[..<split].map(\.description)) | \(ids[split...].map(\.description))"
        case 1:
            let leader = servers.last(where: { $0.node?.isLeader == true })?.id ?? ids[0]
            for other in ids where other != leader { cutBoth(leader, other) }
            name = "isolated leader \(leader)"
        case 2:
            var victim = ids[0]
            if let leader = servers.last(where: { $0.node?.isLeader == true })?.id, random.chance(perMille: 700) {
                victim = leader
            }
            let inbound = random.chance(perMille: 500)
            for other in ids where other != victim {
                cut.insert(inbound ? Link(from: other, to: victim) : Link(from: victim, to: other))
            }
            name = "one-way: \(victim) \(inbound ? "hears nobody" : "is heard by nobody")"
        case 3:
            for (i, a) in ids.enumerated() {
                for (j, b) in ids.enumerated() where i < j {
                    let distance = min(j - i, ids.count - (j - i))
                    if distance > 1 { cutBoth(a, b) }
                }
            }
            name = "ring \(ids.map(\.description).joined(separator: "-"))"
        default:
            let bridge = ids[0]
            let rest = Array(ids.dropFirst())
            let split = rest.count / 2
            for a in rest[..<split] { for b in rest[split...] { cutBoth(a, b) } }
            name = "bridge \(bridge) between \(rest[..<split].map(\.description)) and \(rest[split...].map(\.description))"
        }
        network.partition(cut, name: name)
        partitionEndsAt = now + UInt64(random.within(10...120))
        stats.partitions += 1
        record(.partition(name))
    }

    /// Puts `message` on the wire, subject to partitions, loss, duplication and delay.
    func transmit(_ message: Message) {
        stats.messages += 1
        guard network.canDeliver(from: message.from, to: message.to) else {
            return record(.drop(message, reason: "partitioned"))
        }
        if faultsEnabled && random.chance(perMille: parameters.lossPerMille) {
            return record(.drop(message, reason: "lost"))
        }
        network.enqueue(message, now: now, delay: drawDelay(), isDuplicate: false)
        if faultsEnabled && random.chance(perMille: parameters.duplicatePerMille) {
            network.enqueue(message, now: now, delay: drawDelay(), isDuplicate: true)
        }
    }

    private func drawDelay() -> Int {
        if faultsEnabled && random.chance(perMille: parameters.longDelayPerMille) {
            // Held long enough to arrive after elections and snapshots have moved on.
            return random.within(parameters.delayMaxTicks...(3 * parameters.raft.electionTimeoutTicks))
        }
        return random.within(1...parameters.delayMaxTicks)
    }

    /// Delivers every message due now. A paused server's messages wait; a crashed server's, and
    /// those on a link cut since they were sent, are lost.
    func deliverDue() throws(InvariantViolation) {
        for item in network.takeDue(now: now, holdingFor: { [now] id in self.server(id)?.isPaused(at: now) == true }) {
            let message = item.message
            guard let server = server(message.to), server.isRunning else {
                record(.drop(message, reason: "receiver down"))
                continue
            }
            guard network.canDeliver(from: message.from, to: message.to) else {
                record(.drop(message, reason: "partitioned"))
                continue
            }
            record(.deliver(message, duplicate: item.isDuplicate))
            stats.deliveredMessages += 1
            do {
                try server.node?.step(message)
            } catch {
                // Loss, duplication and reordering never turn a correct peer's message invalid.
                record(.invalidMessage(message, error.description))
                throw InvariantViolation(invariant: "Valid messages", detail: "node \(server.id) refused \(SimEvent.describe(message)): \(error)")
            }
            try drive(server)
            try checkAll()
        }
    }

    /// Snapshots servers now and then (often, so that followers need InstallSnapshot).
    func takeSnapshots() throws(InvariantViolation) {
        for server in servers where server.isRunning && !server.isPaused(at: now) {
            guard random.chance(perMille: parameters.snapshotPerMille), let status = server.node?.status,
                status.appliedIndex > status.snapshotIndex.advanced(by: 2)
            else { continue }
            guard status.appliedIndex == server.machine.appliedIndex else {
                throw InvariantViolation(
                    invariant: "Driver applied index",
                    detail: "node \(server.id) reports applied \(status.appliedIndex), state machine is at \(server.machine.appliedIndex)")
            }
            guard let snapshot = try compact(server) else { continue }
            stats.snapshots += 1
            record(.snapshot(server.id, snapshot.metadata.lastIncludedIndex))
            try checkAll()
        }
    }
}
