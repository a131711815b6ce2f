import RaftCore

/// The fault model of the KV simulation: crashes (of the leader half the time; between events,
/// or just before a node's next write of entries, when a leader's AppendEntries carrying them
/// have left) that lose unsynced log writes and the whole in-memory state machine, pauses (a
/// stopped process whose clock keeps running), and partitions of four shapes; loss,
/// duplication and delay are in `transmit`.
extension KVSimulation {
    func injectFaults() {
        if random.chance(parameters.crashPerMille) {
            let running = nodes.filter { $0.driver != nil }
            let leader = running.first { $0.driver?.status.role == .leader }
            // Never more than a minority down at once in the safety phase, so work continues.
            let down = nodes.count - running.count
            if down < (nodes.count - 1) / 2 || random.chance(300) {
                if let victim = leader != nil && random.chance(500) ? leader : running.randomElement(using: &random) {
                    if random.chance(250) {
                        // In the middle of a `Ready`: a leader's AppendEntries are out, its own
                        // write of their entries is not.
                        victim.storage.tap.crashAtNextEntryWrite = true
                        note("crash of \(victim.id) scheduled before its next write of entries")
                    } else {
                        crash(victim)
                    }
                }
            }
        }
        if random.chance(parameters.pausePerMille), let victim = nodes.randomElement(using: &random), victim.driver != nil {
            let ticks = random.within(5...60)
            victim.pausedUntil = now + UInt64(ticks)
            stats.pauses += 1
            note("pause \(victim.id) for \(ticks) ticks")
        }
        if !cut.isEmpty, now >= partitionEndsAt {
            cut = []
            note("heal")
        } else if cut.isEmpty, random.chance(parameters.partitionPerMille) {
            makePartition()
        }
    }

    /// Cuts links: two halves, an isolated leader, a one-way cut, or a bridge node.
    private func makePartition() {
        let ids = nodes.map(\.id).shuffled(using: &random)
        var links: Set<[NodeID]> = []
        func cutBoth(_ a: NodeID, _ b: NodeID) {
            links.insert([a, b])
            links.insert([b, a])
        }
        let name: String
        switch random.below(4) {
        case 0:
            let split = random.within(1...(ids.count - 1))
            for a in ids[..<split] { for b in ids[split...] { cutBoth(a, b) } }
            name = "halves \(ids[..<split].map(\.description)) | \(ids[split...].map(\.description))"
        case 1:
            let leader = nodes.first { $0.driver?.status.role == .leader }?.id ?? ids[0]
            for other in ids where other != leader { cutBoth(leader, other) }
            name = "isolated leader \(leader)"
        case 2:
            let victim = nodes.first { $0.driver?.status.role == .leader }?.id ?? ids[0]
            let inbound = random.chance(500)
            for other in ids where other != victim { links.insert(inbound ? [other, victim] : [victim, other]) }
            name = "one-way: \(victim) \(inbound ? "hears nobody" : "is heard by nobody")"
        default:
            let rest = Array(ids.dropFirst())
            let split = rest.count / 2
            for a in rest[..<split] { for b in rest[split...] { cutBoth(a, b) } }
            name = "bridge \(ids[0]) between \(rest[..<split].map(\.description)) and \(rest[split...].map(\.description))"
        }
        cut = links
        partitionEndsAt = now + UInt64(random.within(10...120))
        stats.partitions += 1
        note("partition: \(name) until tick \(partitionEndsAt)")
    }
}
