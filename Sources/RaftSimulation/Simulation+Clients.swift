import RaftCore

/// Clients: writes, ReadIndex reads on leaders and followers, membership changes and
/// leadership transfers, all along the run.
extension Simulation {
    func clientRequests() throws(InvariantViolation) {
        // Once healed, only the liveness probe writes, so that a backlog cannot hide a stall.
        if faultsEnabled, random.chance(perMille: parameters.proposePerMille) { try proposeSomewhere() }
        if random.chance(perMille: parameters.readPerMille) {
            // Mostly where a leader is known (servers outside the cluster know none); sometimes anywhere.
            let informed = liveServers.filter { $0.node?.status.leaderID != nil }
            if let server = random.pick(random.chance(perMille: 850) ? informed : liveServers) { try read(at: server) }
        }
        guard faultsEnabled else { return }
        if random.chance(perMille: parameters.membershipPerMille), let leader = currentLeader() {
            try changeMembership(at: leader)
        }
        if random.chance(perMille: parameters.transferPerMille), let leader = currentLeader(),
            let voters = leader.node?.status.membership.voters.sorted(),
            let target = random.pick(voters.filter { $0 != leader.id })
        {
            var result = "started"
            do { try leader.node?.transferLeadership(to: target) } catch { result = error.description }
            stats.transfers += 1
            record(.transfer(leader.id, to: target, result: result))
            try drive(leader)
            try checkAll()
        }
    }

    /// A random live leader (there may briefly be several, of different terms).
    func currentLeader() -> SimServer? { random.pick(liveServers.filter { $0.node?.isLeader == true }) }

    private func proposeSomewhere() throws(InvariantViolation) {
        // Mostly at a leader; sometimes at any server, to exercise refusals.
        let target = random.chance(perMille: 800) ? currentLeader() : random.pick(liveServers)
        guard let target else { return }
        _ = try propose(at: target, key: UInt8(random.below(KeyValueRegister.keyCount)))
    }

    /// Proposes a fresh write at `server`; returns whether it was appended.
    @discardableResult
    func propose(at server: SimServer, key: UInt8) throws(InvariantViolation) -> Bool {
        let operation = nextOperation
        nextOperation += 1
        let command = KeyValueRegister.command(operation: operation, key: key)
        guard let receipt = try? server.node?.propose(command) else {
            record(.propose(server.id, operation: operation, key: key, result: "refused"))
            return false
        }
        server.pendingWrites[receipt.index] = SimServer.PendingWrite(operation: operation, key: key, term: receipt.term)
        record(.propose(server.id, operation: operation, key: key, result: "index \(receipt.index) term \(receipt.term)"))
        try drive(server)
        try checkAll()
        return true
    }

    /// Requests a ReadIndex read at `server` (a leader or a follower), remembering which writes
    /// were acknowledged before it began.
    func read(at server: SimServer) throws(InvariantViolation) {
        server.readSequence += 1
        let id = ReadRequestID(origin: server.id, sequence: UInt64(server.incarnation) << 32 | server.readSequence)
        server.pendingReads[id] = SimServer.PendingRead(id: id, mustObserve: checker.acked)
        record(.readRequested(server.id, id))
        server.node?.requestRead(id)
        try drive(server)
        try checkAll()
    }

    /// One single-server change: promote a learner, remove a voter (the leader too, which makes
    /// it transfer first) while more than `votersMin` remain, remove a learner, or add a learner.
    private func changeMembership(at leader: SimServer) throws(InvariantViolation) {
        guard let membership = leader.node?.status.membership else { return }
        let learners = membership.learners.sorted()
        let voters = membership.voters.sorted()
        let outsiders = servers.map(\.id).filter { !membership.allMembers.contains($0) }
        var change: MembershipChange?
        switch random.below(4) {
        case 0: change = random.pick(learners).map { .promote($0) }
        case 1: change = voters.count > parameters.votersMin ? random.pick(voters).map { .remove($0) } : nil
        case 2: change = random.pick(learners).map { .remove($0) }
        default: change = random.pick(outsiders).map { .addLearner($0) }
        }
        guard let change else { return }
        var result = "appended"
        do {
            let receipt = try leader.node?.proposeMembershipChange(change)
            if let receipt { result = "appended at \(receipt.index) term \(receipt.term)" }
            stats.membershipChanges += 1
        } catch {
            result = error.description
        }
        record(.membership(leader.id, change, result: result))
        try drive(leader)
        try checkAll()
    }
}
