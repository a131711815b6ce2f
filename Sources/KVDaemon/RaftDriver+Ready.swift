import KVStore
import RaftCore

/// The `Ready` cycle (send a leader's replication → apply what an earlier round made durable →
/// persist → send the rest → apply → answer reads → advance) and everything that follows from
/// applying: replies, lock grants, lease bookkeeping, snapshots.
extension RaftDriver {
    /// Handles the node's `Ready`s, each in the order its contract requires, until none is left
    /// or `readyBudgetMillis` has passed (then `hasPendingWork` stays true and the loop comes
    /// back after taking new inputs, so a long catch-up never holds it for long).
    func processReady() throws(DaemonError) {
        let budgetEnds = monotonicMillis() + settings.readyBudgetMillis
        while node.hasReady {
            if monotonicMillis() >= budgetEnds { break }
            let durable = node.durableIndex
            let ready = node.takeReady()
            // A leader's AppendEntries leave before its own fsync (thesis §10.2.1): the transport
            // sends them while this thread writes, so the followers' fsyncs overlap ours.
            if !ready.messagesBeforePersist.isEmpty { send(fillSnapshotChunks(ready.messagesBeforePersist)) }
            // Entries committed in an earlier round are on disk already: apply them and answer
            // their clients now rather than behind this Ready's fsync, which only concerns newer
            // entries (the `Ready` contract allows it; see `RaftNode.durableIndex`).
            let applyFirst =
                ready.snapshot == nil && ready.snapshotChunks.isEmpty
                && (ready.committedEntries.last.map { $0.index <= durable } ?? true)
            if applyFirst { try applyAndAnswer(ready) }
            let started = monotonicMillis()
            var messages = ready.messages
            if !ready.snapshotChunks.isEmpty || ready.snapshot != nil {
                let written = try receiveSnapshot(ready)
                if !written {
                    messages.removeAll { message in
                        if case .installSnapshotResponse = message.body { return true }
                        return false
                    }
                }
            }
            do {
                try storage.persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, sync: ready.mustSync)
            } catch {
                throw .storage(error)
            }
            let persisted = monotonicMillis()
            iterationWork.persistMillis += persisted - started
            if ready.mustSync { metrics.fsyncDuration.recordMilliseconds(persisted - started) }
            if !messages.isEmpty { send(fillSnapshotChunks(messages)) }
            if let snapshot = ready.snapshot {
                guard machine.appliedIndex == snapshot.metadata.lastIncludedIndex else {
                    throw .storage(
                        .corrupt(
                            "installed snapshot at \(snapshot.metadata.lastIncludedIndex) left the state at \(machine.appliedIndex)"))
                }
                failWritesCoveredBySnapshot(snapshot.metadata.lastIncludedIndex)
                refreshMembers()
            }
            if !applyFirst { try applyAndAnswer(ready) }
            iterationWork.readies += 1
            node.advance(ready)
            if messages.count < ready.messages.count { node.abandonIncomingSnapshot() }
            for peer in transfersToRestart { node.restartSnapshotTransfer(to: peer) }
            transfersToRestart = []
            serveReadyReads()
            noteRoleChanges()
            noteMembershipChanges()
        }
        let compactStarted = monotonicMillis()
        try compactIfDue()
        try resetLongWALs()
        iterationWork.compactMillis += monotonicMillis() - compactStarted
    }

    /// Steps 3 and 4 of a `Ready`: applies its committed entries, answers their writes, and
    /// serves the reads it confirmed once the state has reached them.
    func applyAndAnswer(_ ready: Ready) throws(DaemonError) {
        if !ready.committedEntries.isEmpty {
            let applyStarted = monotonicMillis()
            let applied: [KVApplied]
            do { applied = try machine.apply(ready.committedEntries) } catch { throw .storage(error) }
            noteAppliedMemberships(ready.committedEntries)
            for outcome in applied { finishApplied(outcome) }
            iterationWork.applyMillis += monotonicMillis() - applyStarted
        }
        for state in ready.readStates { finishReadState(state) }
        for refused in ready.refusedForwards { finishRefusedForward(refused) }
        serveReadyReads()
    }

    /// An applied entry answers the write that proposed it, if it is ours: the same index AND
    /// term. A different term at our index means our entry was overwritten: definitely not
    /// applied, so the client may retry elsewhere.
    func finishApplied(_ outcome: KVApplied) {
        leases.observe(outcome.events, nowMillis: monotonicMillis())
        if let pending = requests.takeWrite(at: outcome.index) {
            if pending.term != outcome.term {
                metrics.proposalsFailed.increment()
                pending.reply.send(notLeaderReply(nil))
            } else {
                metrics.proposalsCommitted.increment()
                answer(pending, with: outcome.result)
            }
        }
        finishForwarded(outcome)
        for event in outcome.events { handle(event) }
    }

    func answer(_ pending: PendingWrite, with result: KVResult) {
        if case .error(.stale) = result { metrics.fencedRejections.increment() }
        switch pending.kind {
        case .internalCommand:
            return
        case .membershipChange:
            pending.reply.send(.ok)
        case .write(let style):
            pending.reply.send(Reply.from(result, style: style))
        case .lock(let name, let lease, let waitDeadline):
            switch result {
            case .lockGranted(let token):
                metrics.lockGrants.increment()
                pending.reply.send(.integer(Int64(clamping: token)))
            case .lockQueued:
                guard let waitDeadline else {
                    pending.reply.send(.err("lock queued without WAIT"))
                    return
                }
                // A session retry gets the kept `lockQueued` even if the grant, or the end of the
                // lease, has applied since: answer from the state instead of waiting for an event
                // that already happened (the retry would time out, again and again).
                if let holder = try? machine.lockOwner(name), holder.leaseID == lease {
                    metrics.lockGrants.increment()
                    pending.reply.send(.integer(Int64(clamping: holder.token)))
                    return
                }
                if let alive = try? machine.lease(lease) != nil, !alive {
                    pending.reply.send(.err("lease \(lease) ended while waiting for the lock"))
                    return
                }
                requests.addLockWaiter(
                    PendingRequests.Waiter(deadline: waitDeadline, reply: pending.reply, queuedAtMillis: monotonicMillis()),
                    for: PendingRequests.LockWaiterKey(name: name, leaseID: lease))
            default:
                pending.reply.send(Reply.from(result, style: .standard))
            }
        }
    }

    func handle(_ event: KVEvent) {
        switch event {
        case .lockGranted(let name, let lease, let token):
            let waiters = requests.takeLockWaiters(name: name, leaseID: lease)
            if !waiters.isEmpty {
                metrics.lockGrants.increment()
                let now = monotonicMillis()
                for waiter in waiters {
                    metrics.recordLockWait(milliseconds: now - min(now, waiter.queuedAtMillis))
                    waiter.reply.send(.integer(Int64(clamping: token)))
                }
            }
        case .leaseEnded(let lease, let expired):
            if expired { metrics.leaseExpirations.increment() }
            for waiter in requests.takeLockWaiters(leaseID: lease) {
                waiter.reply.send(.err("lease \(lease) ended while waiting for the lock"))
            }
        case .membersChanged:
            refreshMembers()
        case .leaseGranted, .leaseRenewed, .sessionExpired:
            break
        }
    }

    /// Writes proposed at indexes a received snapshot covers cannot be matched to their entries
    /// any more: they may or may not have been applied.
    func failWritesCoveredBySnapshot(_ index: LogIndex) {
        requests.failWrites(through: index, with: .unavailable("outcome unknown: replaced by a snapshot"))
        // A forwarded write is recognised only by applying its entry, and the snapshot may hold
        // it: every one still waiting is indeterminate now.
        requests.failForwards(with: .unavailable("outcome unknown: forwarded write replaced by a snapshot"))
    }

    // MARK: Reads

    /// A read served at a read index (thesis §6.4): the leader confirms its own; a follower asks
    /// its leader for one (`RaftNode.requestRead`) and serves the read once its own state machine
    /// has applied that index. A follower that knows no leader fails it at once (`-NOTLEADER`).
    func startRead(_ command: ClientCommand, routing: CommandRouting, deadline: UInt64, reply: Responder) {
        if routing.localReads {
            reply.send(executeRead(command))
            return
        }
        if !node.isLeader {
            guard forwards(routing) else {
                reply.send(notLeaderReply(nil))
                return
            }
            forwarding.reads += 1
            metrics.forwardedReads.increment()
        }
        readSequence += 1
        let id = ReadRequestID(origin: node.id, sequence: readSequence)
        requests.addRead(PendingRequests.Read(command: command, deadline: deadline, reply: reply), id: id)
        node.requestRead(id)
    }

    func finishReadState(_ state: ReadState) {
        if let (read, error) = requests.readConfirmed(state) { read.reply.send(proposalErrorReply(error)) }
    }

    /// Serves reads whose read index has been applied (thesis §6.4).
    func serveReadyReads() {
        for read in requests.takeServableReads(applied: machine.appliedIndex) { read.reply.send(executeRead(read.command)) }
    }

    /// Runs a read against the applied state.
    func executeRead(_ command: ClientCommand) -> Reply {
        do {
            switch command {
            case .read(let read):
                return Reply.from(try machine.read(read, nowMillis: max(wallMillis(), machine.clockMillis)), style: .standard)
            case .getMeta(let key):
                guard let record = try machine.get(key) else { return .null }
                return .array([
                    .bulk(record.value), .integer(Int64(clamping: record.createIndex)),
                    .integer(Int64(clamping: record.modIndex)), .integer(Int64(clamping: record.leaseID ?? 0)),
                ])
            case .list(let prefix, let limit):
                guard let rows = try machine.listReply(prefix: prefix, limit: limit) else {
                    return .err(KVStateMachine.replyTooLarge("LIST", machine.limits.replyBytesMax).description + " (LIMIT)")
                }
                return .array(rows.flatMap { [Reply.bulk($0.key), .bulk($0.record.value)] })
            case .scan(let after, let pattern, let count, let type):
                return try scan(after: after, pattern: pattern, count: count, type: type)
            case .keys(let pattern): return try keys(matching: pattern)
            case .watch(let keys): return .array(try machine.versions(keys).map { .integer(Int64(clamping: $0)) })
            case .randomKey: return .bulk(try randomKey())
            case .owner(let name):
                guard let holder = try machine.lockOwner(name) else { return .array(nil) }
                return .array([.integer(Int64(clamping: holder.leaseID)), .integer(Int64(clamping: holder.token))])
            case .leaseTTL(let id):
                guard let lease = try machine.lease(id) else { return .err("lease \(id) not found") }
                let remaining = leases.remainingMillis(id, nowMillis: monotonicMillis()) ?? lease.remainingMillis
                return .array([.integer(Int64(clamping: remaining)), .integer(Int64(clamping: lease.ttlMillis))])
            case .ping, .echo, .quit, .info, .readOnly, .emptyArray, .write, .lock, .transferLeadership, .backup, .connection, .member:
                return .err("not a read")
            }
        } catch {
            return .unavailable("storage read failed: \(error)")
        }
    }

    /// `SCAN`: examines at most `count` keys after the cursor (only those that can match the
    /// pattern's literal prefix), so one call costs O(count + log n) whatever the key count.
    func scan(after: [UInt8]?, pattern: [UInt8]?, count: Int, type: String?) throws(StorageError) -> Reply {
        if let type, type != "string" { return .array([.bulk(Array("0".utf8)), .array([])]) }
        let (found, last) = try machine.scanKeys(prefix: pattern.map(Glob.literalPrefix) ?? [], after: after, limit: count)
        let matching = pattern.map { pattern in found.filter { Glob.matches(pattern, $0, ignoringCase: false) } } ?? found
        let cursor = last.map(ScanCursor.encode) ?? "0"
        return .array([.bulk(Array(cursor.utf8)), .array(matching.map { .bulk($0) })])
    }

    /// `RANDOMKEY`: a key drawn uniformly from a window of up to `randomKeyWindow` live keys that
    /// starts at a random point of the key space (and wraps to the start): uniform over all keys
    /// when there are no more than the window, roughly uniform beyond; O(log n + window). Nil if
    /// there are no live keys in the window.
    func randomKey() throws(StorageError) -> [UInt8]? {
        var generator = SystemRandomNumberGenerator()
        let point = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var window = try machine.scanKeys(prefix: [], after: point, limit: Self.randomKeyWindow).keys
        if window.count < Self.randomKeyWindow {
            let wrapped = try machine.scanKeys(prefix: [], after: nil, limit: Self.randomKeyWindow - window.count).keys
            window += wrapped.filter { !window.contains($0) }
        }
        return window.randomElement(using: &generator)
    }

    /// Live keys `RANDOMKEY` chooses among.
    static let randomKeyWindow = 64

    /// `KEYS`: every live key matching `pattern`, examining at most `keysExaminedMax` keys (those
    /// with the pattern's literal prefix); beyond that the client is told to use `SCAN`.
    func keys(matching pattern: [UInt8]) throws(StorageError) -> Reply {
        let prefix = Glob.literalPrefix(pattern)
        var matching: [Reply] = []
        var after: [UInt8]?
        var examined = 0
        repeat {
            let (found, last) = try machine.scanKeys(prefix: prefix, after: after, limit: 1_000)
            examined += found.count
            guard examined <= settings.keysExaminedMax else {
                return .err("KEYS would examine more than \(settings.keysExaminedMax) keys; use SCAN")
            }
            for key in found where Glob.matches(pattern, key, ignoringCase: false) { matching.append(.bulk(key)) }
            after = last
        } while after != nil
        return .array(matching)
    }

    /// Keys whose deadline has passed, proposed for deletion by a leader whose no-op has applied,
    /// one entry at a time: every tick, and after every loop iteration while a full batch was
    /// last found (a backlog drains at one batch per commit, not per tick). O(log n) per call.
    func proposeKeyExpiries() {
        if let inFlight = keyExpiryInFlight, machine.appliedIndex < inFlight.index, node.status.currentTerm == inFlight.term {
            return
        }
        keyExpiryInFlight = nil
        let status = node.status
        guard status.role == .leader, machine.highestTerm == status.currentTerm else { return }
        let now = max(wallMillis(), machine.clockMillis)
        guard let due = try? machine.dueExpiries(nowMillis: now, limit: settings.expiryBatchMax), !due.isEmpty else { return }
        let command = KVCommand(timestampMillis: now, operation: .expireKeys(due))
        guard let receipt = try? node.propose(command.encoded()) else { return }
        keyExpiryInFlight = (receipt.index, receipt.term)
        keyExpiryBacklog = due.count == settings.expiryBatchMax
    }

    // MARK: Deadlines, roles, snapshots

    /// The loop is stopping: answer every request still waiting, so no client hangs. Writes may
    /// still commit through the other nodes, so they get the indeterminate `-UNAVAILABLE`.
    public func abandonPending() {
        requests.abandonAll(with: .unavailable("node is shutting down; the request may or may not take effect"))
    }

    /// This node stopped leading without knowing a new leader (CheckQuorum: it lost contact
    /// with a majority): it will not learn what became of its writes until it hears from the
    /// cluster again, so their clients are told now (`-UNAVAILABLE`, indeterminate) and can retry
    /// at the new leader — with a session, exactly once — instead of waiting out their timeout.
    /// A leader deposed by a newer leader it hears from keeps its writes pending: their outcome
    /// arrives with the new leader's log.
    func answerWritesOfLostLeadership(term: Term) {
        requests.failAllWrites(
            with: .unavailable(
                "outcome unknown: this node lost contact with the majority and stopped leading in term \(term); retry at the new leader"))
    }

    /// Requests past their deadline get `-TIMEOUT` (indeterminate for writes).
    func expireDeadlines(now: UInt64) {
        requests.expire(
            now: now,
            replies: PendingRequests.TimeoutReplies(
                write: .timeout("no commit within \(settings.requestTimeoutMillis) ms; the write may or may not apply"),
                read: .timeout("leadership not confirmed in time"),
                readIndexNotReached: .timeout("state machine did not reach the read index in time"),
                lock: .timeout("lock not granted in time; revoke the lease to leave the queue")))
    }

    func noteRoleChanges() {
        let status = node.status
        if lastRole == .leader, status.role != .leader, status.leaderID == nil {
            answerWritesOfLostLeadership(term: status.currentTerm)
        }
        if status.role != lastRole || status.leaderID != lastLeader {
            logger.info(
                "role \(roleName(status.role)) in term \(status.currentTerm)",
                metadata: [
                    "was": "\(roleName(lastRole))", "leader": "\(status.leaderID.map(\.description) ?? "none")",
                    "commit": "\(status.commitIndex)", "applied": "\(status.appliedIndex)",
                    "reason": "\(roleChangeReason(from: lastRole, lastLeader: lastLeader, to: status))",
                ])
        }
        if status.leaderID != lastLeader {
            let now = monotonicMillis()
            if status.leaderID == nil {
                leaderlessSinceMillis = leaderlessSinceMillis ?? now
            } else {
                metrics.leaderChanges.increment()
                if let since = leaderlessSinceMillis { metrics.lastFailoverMillis.record(Int64(now - since)) }
                leaderlessSinceMillis = nil
            }
            lastLeader = status.leaderID
        }
        if status.role != lastRole || status.leaderID != lastLeader { leaderLossReason = nil }
        lastRole = status.role
        metrics.term.record(Int64(clamping: status.currentTerm.rawValue))
        metrics.hasLeader.record(status.leaderID == nil ? 0 : 1)
        metrics.applyLag.record(Int64(clamping: status.commitIndex.rawValue &- status.appliedIndex.rawValue))
    }

    /// Why the role or the known leader changed, as far as this node can tell, for the log.
    func roleChangeReason(from was: RaftRole, lastLeader: NodeID?, to status: RaftStatus) -> String {
        switch (was, status.role) {
        case (_, .leader) where was != .leader: return "won the election"
        case (.leader, _) where status.leaderID == nil: return "lost contact with a majority (CheckQuorum)"
        case (.leader, _): return "a leader of a newer term"
        case (_, .preCandidate), (_, .candidate):
            if let lost = leaderLossReason { return lost }
            return lastLeader.map { "no word from leader \($0) for an election timeout" } ?? "no leader for an election timeout"
        case (_, .follower) where status.leaderID != nil && lastLeader == nil: return "heard from the leader"
        case (_, .follower) where status.leaderID != nil: return "a new leader"
        case (.preCandidate, .follower), (.candidate, .follower): return "a candidate of a newer term, or the pre-vote failed"
        default: return leaderLossReason ?? "leader lost"
        }
    }

    func roleName(_ role: RaftRole) -> String {
        switch role {
        case .leader: return "leader"
        case .follower: return "follower"
        case .candidate: return "candidate"
        case .preCandidate: return "pre-candidate"
        }
    }

    /// The `kvd` section of `INFO` (docs/PROTOCOL.md): `name:value` lines.
    func kvdInfoSection() -> String {
        let status = node.status
        let role: String
        switch status.role {
        case .leader: role = "leader"
        case .follower: role = "follower"
        case .candidate, .preCandidate: role = "candidate"
        }
        let lines = [
            "# kvd", "node_id:\(status.id)", "role:\(role)", "term:\(status.currentTerm)",
            "leader_id:\(status.leaderID.map(\.description) ?? "0")",
            "leader_client:\(status.leaderID.flatMap { clientAddresses[$0] } ?? "")",
            "commit_index:\(status.commitIndex)", "applied_index:\(status.appliedIndex)",
            "last_log_index:\(status.lastLogIndex)", "snapshot_index:\(status.snapshotIndex)",
            "cluster_id:\(settings.clusterID)",
            "voters:\(status.membership.voters.sorted().map(\.description).joined(separator: ","))",
            "learners:\(status.membership.learners.sorted().map(\.description).joined(separator: ","))",
            "loop_iterations:\(iterations.count)", "loop_iteration_max_us:\(iterations.maxMicros)",
            "loop_iteration_p99_us:\(iterations.quantileMicros(0.99))",
            "loop_iteration_p999_us:\(iterations.quantileMicros(0.999))",
            "snapshot_transfers:\(outgoing.count)", "receiving_snapshot:\(incoming == nil ? 0 : 1)",
        ] + forwardingInfoLines()
        var peerLines: [String] = []
        if let peers = settings.peerCounters?() {
            peerLines = [
                "peers_connected:\(peers.connectedPeers)",
                "peer_stalls:\(peers.peers.values.reduce(0) { $0 + $1.stalls })",
                "peer_messages_dropped:\(peers.messagesDropped + peers.messagesUnroutable + peers.inboundBatchesDropped)",
            ]
        }
        return (lines + peerLines).joined(separator: "\r\n") + "\r\n"
    }
}
