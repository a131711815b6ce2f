import RaftCore

/// The driver loop of one server, following `Ready`'s contract step by step: send what may leave
/// early, persist (fsync when asked), send the rest, restore a snapshot, apply committed
/// entries, answer reads, advance.
extension Simulation {
    /// Handles `Ready`s until the node has nothing more to do.
    func drive(_ server: SimServer) throws(InvariantViolation) {
        while server.node?.hasReady == true {
            try handleOneReady(server)
            guard server.isRunning else { return }
        }
        try serveReadyReads(server)
    }

    private func handleOneReady(_ server: SimServer) throws(InvariantViolation) {
        guard let ready = server.node?.takeReady() else { return }
        if let first = ready.entries.first {
            let previous = ready.snapshot.map { $0.metadata.lastIncludedTerm } ?? server.node?.term(at: first.index.previous)
            try checker.checkWritten(ready.entries, previousTerm: previous ?? .zero, on: server.id)
        }
        let commitIndex = server.node?.status.commitIndex ?? .zero
        // A leader's replication leaves before its own write (thesis §10.2.1); a crash here loses
        // that write while followers may already store what it carried.
        for message in ready.messagesBeforePersist { try send(message, from: server) }
        if server.crashPoint == .afterEarlySend, !ready.messagesBeforePersist.isEmpty {
            return crash(server, point: .afterEarlySend)
        }
        try receive(ready.snapshotChunks, on: server)
        if let snapshot = ready.snapshot {
            try install(snapshot.metadata, on: server)
            if server.crashPoint == .midInstall { return crash(server, point: .midInstall) }
        }
        do {
            try server.storage.persist(
                hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, sync: ready.mustSync)
        } catch {
            throw InvariantViolation(invariant: "Storage contract", detail: "node \(server.id): \(error)")
        }
        if server.crashPoint == .afterPersist { return crash(server, point: .afterPersist) }
        for message in ready.messages { try send(message, from: server) }
        if server.crashPoint == .afterSend { return crash(server, point: .afterSend) }
        if ready.snapshot != nil { try checker.checkDigest(server.machine, on: server.id) }
        for entry in ready.committedEntries { try apply(entry, on: server, commitIndex: commitIndex) }
        for state in ready.readStates { answer(state, on: server) }
        server.node?.advance(ready)
        for peer in server.transfersToRestart { server.node?.restartSnapshotTransfer(to: peer) }
        server.transfersToRestart = []
        if server.crashPoint == .afterReady { crash(server, point: .afterReady) }
    }

    private func send(_ message: Message, from server: SimServer) throws(InvariantViolation) {
        var message = message
        if case .installSnapshot(let request) = message.body {
            guard let filled = try fill(request, to: message.to, on: server) else { return }
            message.body = .installSnapshot(filled)
        }
        try checker.recordSent(message)
        switch message.body {
        case .requestVote(let request) where request.isPreVote: break
        case .requestVoteResponse(let response) where response.isPreVote && response.voteGranted: break
        default: server.exposedTerm = max(server.exposedTerm, message.term)
        }
        // A crash point still waiting for this server to lead does not hold the vote crash back.
        if case .requestVoteResponse(let response) = message.body, response.voteGranted, !response.isPreVote,
            faultsEnabled, server.crashPoint == nil || server.crashPoint == .afterEarlySend,
            random.chance(perMille: parameters.crashAfterVotePerMille)
        {
            // Targeted fault: a vote is the state most easily lost by a careless disk path.
            server.crashPoint = .afterReady
        }
        transmit(message)
    }

    private func apply(_ entry: Entry, on server: SimServer, commitIndex: LogIndex) throws(InvariantViolation) {
        try checker.checkApplied(entry, on: server.id, commitIndex: commitIndex)
        do {
            _ = try server.machine.apply(entry)
        } catch {
            throw InvariantViolation(invariant: "State machine contract", detail: "node \(server.id): \(error)")
        }
        try checker.checkDigest(server.machine, on: server.id)
        guard let write = server.pendingWrites.removeValue(forKey: entry.index) else { return }
        // The proposal took effect if and only if the entry applied at its index has its term.
        guard entry.term == write.term else { return }
        checker.recordAcked(key: write.key, AckedWrite(operation: write.operation, index: entry.index))
        stats.acknowledgedWrites += 1
        record(.acknowledged(server.id, operation: write.operation, index: entry.index, term: entry.term))
        if livenessOperations.contains(write.operation) { livenessAcknowledged = true }
    }

    private func answer(_ state: ReadState, on server: SimServer) {
        guard let read = server.pendingReads.removeValue(forKey: state.id) else { return }
        switch state.outcome {
        case .ready(let index):
            server.readyReads.append((read, index))
        case .failed(let error):
            stats.failedReads += 1
            record(.readFailed(server.id, state.id, error.description))
        }
    }

    /// Serves every read whose index the state machine has reached, checking what it observes.
    func serveReadyReads(_ server: SimServer) throws(InvariantViolation) {
        guard !server.readyReads.isEmpty else { return }
        var waiting: [(read: SimServer.PendingRead, index: LogIndex)] = []
        for (read, index) in server.readyReads {
            guard server.machine.appliedIndex >= index else {
                waiting.append((read, index))
                continue
            }
            record(.readServed(server.id, read.id, readIndex: index, applied: server.machine.appliedIndex))
            try checker.checkRead(read, readIndex: index, machine: server.machine, on: server.id)
            stats.servedReads += 1
        }
        server.readyReads = waiting
    }

    /// Crashes `server`: in-memory state is gone, unsynced writes are lost.
    func crash(_ server: SimServer, point: SimServer.CrashPoint?) {
        record(.crash(server.id, point: point?.rawValue ?? "between events"))
        server.crash()
        server.restartAt = now + UInt64(random.within(3...60))
        stats.crashes += 1
        // The kernel closes a dead process's connections: the servers that can reach it see them
        // end at once (a paused server notices only when it runs again, and then too late).
        for other in liveServers where other !== server && network.canDeliver(from: server.id, to: other.id) {
            reportUnreachable(server.id, to: other)
        }
    }

    /// Tells `observer` that `peer` stopped answering on an open connection.
    func reportStalled(_ peer: NodeID, to observer: SimServer) {
        guard observer.node != nil else { return }
        record(.stalled(observer.id, peer: peer))
        stats.unreachableReports += 1
        observer.node?.peerStalled(peer)
    }

    /// Gives `observer` the evidence that `peer` is unreachable.
    func reportUnreachable(_ peer: NodeID, to observer: SimServer) {
        guard observer.node != nil else { return }
        record(.unreachable(observer.id, peer: peer))
        stats.unreachableReports += 1
        observer.node?.peerUnreachable(peer)
    }

    /// Restarts `server` from what its disk holds.
    func restart(_ server: SimServer) throws(InvariantViolation) {
        var state: PersistentState
        do { state = try server.storage.load() } catch {
            throw InvariantViolation(invariant: "Storage contract", detail: "node \(server.id) cannot load: \(error)")
        }
        try checker.checkRestart(server, state: state)
        let machine = try recoverState(server, state: &state)
        do {
            server.node = try RaftNode(
                configuration: server.configuration, state: state, bootstrap: bootstrap, appliedIndex: machine.appliedIndex,
                seed: random.next())
        } catch {
            throw InvariantViolation(invariant: "Restart", detail: "node \(server.id) cannot start: \(error)")
        }
        server.machine = machine
        server.incarnation += 1
        if faultsEnabled, random.chance(perMille: parameters.crashBeforeLeaderPersistPerMille) {
            // Targeted fault: a new leader's first early messages are where a careless core would
            // reveal its new term before it is durable (a single voter wins in one `Ready`).
            server.crashPoint = .afterEarlySend
        }
        // Only what is durable carries over; commit and applied start again from the disk. The
        // commit is observed from the snapshot on, so the next check re-verifies the loaded
        // commit index against everything seen committed before.
        if let status = server.node?.status {
            server.seen = SimServer.Observation(
                term: status.currentTerm, role: status.role, commit: status.snapshotIndex, applied: status.appliedIndex,
                lastIndex: status.lastLogIndex, lastTerm: status.lastLogTerm)
            record(.restart(server.id, term: status.currentTerm, commit: status.commitIndex, snapshot: status.snapshotIndex))
        }
        stats.restarts += 1
    }
}
