/// Log replication (§5.3) with flow control, and commitment (§5.4.2).
extension RaftNode {
    mutating func tickLeader() {
        withLeader { node, leader in
            node.electionElapsed += 1
            leader.heartbeatElapsed += 1
            node.detectStalledPipelines(&leader)
            if var transfer = leader.transfer {
                transfer.elapsedTicks += 1
                // Thesis §3.10: abort a transfer that did not complete within an election timeout.
                leader.transfer = transfer.elapsedTicks >= node.configuration.electionTimeoutTicks ? nil : transfer
            }
            // CheckQuorum (thesis §6.2), judged at every tick: a leader that has not heard from a
            // quorum within an election timeout steps down at once, so that its clients are told
            // and go to the new leader instead of waiting on it for up to another timeout.
            if node.configuration.checkQuorum && !node.quorumHeardWithinElectionTimeout(leader) {
                leader.stepDownRequested = .lostQuorum
                return
            }
            if node.electionElapsed >= node.configuration.electionTimeoutTicks {
                node.electionElapsed = 0
                if node.configuration.checkQuorum {
                    for peer in leader.progress.keys { leader.progress[peer]?.recentlyActive = false }
                }
            }
            if leader.heartbeatElapsed >= node.configuration.heartbeatIntervalTicks {
                leader.heartbeatElapsed = 0
                node.broadcastHeartbeat(&leader)
            }
        }
    }

    /// CheckQuorum: did a quorum of voters (counting this leader) answer within the last election
    /// timeout? A follower counts from when it last answered, or from when this leader started
    /// tracking it (its election, or the membership change that added it).
    func quorumHeardWithinElectionTimeout(_ leader: LeaderState) -> Bool {
        let voters = log.membership.voters
        let window = UInt64(configuration.electionTimeoutTicks)
        let heard = voters.filter { voter in
            guard voter != id else { return true }
            guard let progress = leader.progress[voter] else { return false }
            return ticksElapsed - progress.lastHeardTick < window
        }
        return heard.count >= voters.count / 2 + 1
    }

    /// A pipeline whose in-flight messages went unanswered for half an election timeout lost some
    /// of them (heartbeats anchored at the match index cannot reveal the gap); fall back to
    /// probing so that the lost entries are sent again well before a transfer or read times out.
    mutating func detectStalledPipelines(_ leader: inout LeaderState) {
        for peer in leader.progress.keys.sorted() {
            guard var progress = leader.progress[peer], case .replicate = progress.mode, !progress.inflight.isEmpty
            else { continue }
            progress.stalledTicks += 1
            if progress.stalledTicks > max(2, configuration.electionTimeoutTicks / 2) {
                progress.backtrack(to: progress.matchIndex.next)
            }
            leader.progress[peer] = progress
        }
    }

    /// Sends what `takeReady` must carry out for a leader: a read round, then new entries.
    mutating func flushLeaderOutput() {
        withLeader { node, leader in
            if leader.readRoundPending { node.broadcastHeartbeat(&leader) }
            if leader.replicationPending {
                leader.replicationPending = false
                for peer in leader.progress.keys.sorted() { node.replicate(to: peer, &leader) }
            }
            if leader.commitAnnouncementPending {
                leader.commitAnnouncementPending = false
                for peer in leader.progress.keys.sorted() {
                    guard let progress = leader.progress[peer], case .replicate = progress.mode,
                        progress.announcedCommit < min(node.log.committed, progress.matchIndex)
                    else { continue }
                    node.sendAnchoredHeartbeat(to: peer, &leader)
                }
            }
        }
    }

    /// A heartbeat to every member, numbered as a new round. It asserts leadership (§5.2),
    /// carries the commit index, retries lost probes and snapshot chunks, and confirms reads.
    mutating func broadcastHeartbeat(_ leader: inout LeaderState) {
        leader.round += 1
        leader.readRoundPending = false
        for peer in leader.progress.keys.sorted() {
            guard var progress = leader.progress[peer] else { continue }
            switch progress.mode {
            case .probe:
                progress.probeSent = false
                leader.progress[peer] = progress
                sendAppend(to: peer, &leader, allowEmpty: true)
            case .replicate, .snapshot:
                // A chunk unanswered for an election timeout was lost (or its answer was): ask
                // again. Sooner would resend megabytes to a follower that is merely busy writing,
                // or flood the queue of one that is down.
                // Only to a follower that answers heartbeats: one that is down would get a
                // megabyte per election timeout queued for it, stale by the time it returns.
                if case .snapshot(var transfer) = progress.mode, progress.recentlyActive,
                    leader.round - transfer.sentRound >= snapshotResendRounds
                {
                    transfer.chunkOutstanding = false
                    progress.mode = .snapshot(transfer)
                    leader.progress[peer] = progress
                    sendSnapshotChunk(to: peer, &leader)
                }
                sendAnchoredHeartbeat(to: peer, &leader)
            }
        }
    }

    /// Heartbeat rounds after which an unanswered snapshot chunk is asked for again.
    var snapshotResendRounds: UInt64 {
        UInt64(max(2, configuration.electionTimeoutTicks / max(1, configuration.heartbeatIntervalTicks)))
    }

    /// An empty AppendEntries anchored at `peer`'s match index, which is known to agree, so it is
    /// never refused. If that entry is compacted, the empty prefix (index 0) serves as the anchor.
    mutating func sendAnchoredHeartbeat(to peer: NodeID, _ leader: inout LeaderState) {
        guard var progress = leader.progress[peer] else { return }
        let anchorTerm = log.term(at: progress.matchIndex)
        let commit = min(log.committed, progress.matchIndex)
        let heartbeat = AppendEntries(
            prevLogIndex: anchorTerm == nil ? .zero : progress.matchIndex, prevLogTerm: anchorTerm ?? .zero,
            entries: [], leaderCommit: commit, round: leader.round)
        send(peer, .appendEntries(heartbeat))
        progress.announcedCommit = max(progress.announcedCommit, commit)
        leader.progress[peer] = progress
    }

    /// Sends as much as flow control allows to `peer`.
    mutating func replicate(to peer: NodeID, _ leader: inout LeaderState) {
        guard let progress = leader.progress[peer] else { return }
        switch progress.mode {
        case .snapshot:
            sendSnapshotChunk(to: peer, &leader)
        case .probe:
            if !progress.probeSent { sendAppend(to: peer, &leader, allowEmpty: true) }
        case .replicate:
            while let current = leader.progress[peer], case .replicate = current.mode,
                current.canSend(inflightMax: configuration.inflightMessagesMax), current.nextIndex <= log.lastIndex
            {
                sendAppend(to: peer, &leader, allowEmpty: false)
            }
        }
    }

    /// Sends one AppendEntries from `peer`'s next index, or starts a snapshot transfer if the
    /// entries it needs were compacted away (§7).
    mutating func sendAppend(to peer: NodeID, _ leader: inout LeaderState, allowEmpty: Bool) {
        guard var progress = leader.progress[peer] else { return }
        let prevIndex = progress.nextIndex.previous
        guard let prevTerm = log.term(at: prevIndex),
            let batch = log.entries(
                from: progress.nextIndex, maxCount: configuration.entriesPerAppendMax,
                maxBytes: configuration.bytesPerAppendMax)
        else {
            guard let metadata = log.metadata(at: log.applied) else { return }
            progress.startSnapshot(metadata)
            leader.progress[peer] = progress
            sendSnapshotChunk(to: peer, &leader)
            return
        }
        if batch.isEmpty && !allowEmpty { return }
        let request = AppendEntries(
            prevLogIndex: prevIndex, prevLogTerm: prevTerm, entries: batch, leaderCommit: log.committed,
            round: leader.round)
        send(peer, .appendEntries(request))
        progress.announcedCommit = max(progress.announcedCommit, min(log.committed, batch.last?.index ?? prevIndex))
        progress.sent(through: batch.last?.index ?? prevIndex, entryCount: batch.count)
        leader.progress[peer] = progress
    }

    /// AppendEntries receiver (Figure 2).
    mutating func handleAppendEntries(_ message: Message, _ request: AppendEntries) {
        var prevIndex = request.prevLogIndex
        var prevTerm = request.prevLogTerm
        var newEntries = request.entries
        // Entries covered by our snapshot are committed and so match (Log Matching); skip them.
        if prevIndex < log.snapshotIndex {
            newEntries.removeAll { $0.index <= log.snapshotIndex }
            prevIndex = log.snapshotIndex
            prevTerm = log.snapshotTerm
        }
        guard log.matches(index: prevIndex, term: prevTerm) else {
            let hint = log.conflictHint(at: prevIndex)
            send(message.from, .appendEntriesResponse(AppendEntriesResponse(
                success: false, matchIndex: .zero, rejectedIndex: request.prevLogIndex, conflictTerm: hint.term,
                conflictIndex: min(hint.index, request.prevLogIndex), round: request.round)))
            return
        }
        let lastNew = log.appendAsFollower(prevIndex: prevIndex, entries: newEntries)
        if request.leaderCommit > log.committed {
            log.committed = max(log.committed, min(request.leaderCommit, lastNew))
        }
        send(message.from, .appendEntriesResponse(AppendEntriesResponse(
            success: true, matchIndex: lastNew, round: request.round)))
    }

    /// The leader's side of an AppendEntries answer.
    mutating func handleAppendResponse(
        _ message: Message, _ response: AppendEntriesResponse, _ leader: inout LeaderState
    ) throws(StepError) {
        guard var progress = leader.progress[message.from] else { return }
        if response.success && response.matchIndex > log.lastIndex {
            throw .invalidMessage("node \(message.from) acknowledged index \(response.matchIndex) beyond our last \(log.lastIndex)")
        }
        progress.recentlyActive = true
        progress.lastHeardTick = ticksElapsed
        progress.reportedUnreachable = false
        progress.ackedRound = max(progress.ackedRound, response.round)
        if response.success {
            let moved = progress.acknowledge(response.matchIndex)
            if progress.matchIndex >= log.committed { progress.catchingUpFromSnapshot = false }
            leader.progress[message.from] = progress
            if moved {
                maybeCommit(&leader)
                // A follower that acknowledges an entry already committed (the majority answered
                // first) is told the commit index now, not at the next heartbeat: a client waiting
                // on that follower (a forwarded write, a read) waits for it to apply the entry.
                if progress.announcedCommit < min(log.committed, progress.matchIndex) {
                    leader.commitAnnouncementPending = true
                }
            }
        } else if isCurrentRejection(response, progress) {
            progress.backtrack(to: nextIndexAfterRejection(response))
            leader.progress[message.from] = progress
        } else {
            leader.progress[message.from] = progress
        }
        continueTransfer(&leader)
        replicate(to: message.from, &leader)
        confirmReads(&leader)
    }

    /// A rejection is stale if it answers a message sent before a later success or backtrack.
    func isCurrentRejection(_ response: AppendEntriesResponse, _ progress: Progress) -> Bool {
        switch progress.mode {
        case .probe: return response.rejectedIndex == progress.nextIndex.previous
        case .replicate: return response.rejectedIndex > progress.matchIndex
        case .snapshot: return false
        }
    }

    /// Fast backtracking: if we hold entries of the follower's conflicting term, resume after our
    /// last one; otherwise skip the follower's whole conflicting term. Always strictly below the
    /// rejected index, so each rejection makes progress.
    func nextIndexAfterRejection(_ response: AppendEntriesResponse) -> LogIndex {
        var next = response.conflictIndex
        if let conflictTerm = response.conflictTerm,
            let ours = log.lastIndex(ofTerm: conflictTerm, atOrBefore: response.rejectedIndex)
        {
            next = ours.next
        }
        return max(LogIndex(1), min(next, response.rejectedIndex))
    }

    /// §5.3, §5.4.2: commit the highest index stored on a quorum of voters, but only by counting
    /// replicas of an entry from the current term.
    mutating func maybeCommit(_ leader: inout LeaderState) {
        let voters = log.membership.voters
        guard !voters.isEmpty else { return }
        let matches = voters.map { $0 == id ? persistedIndex : (leader.progress[$0]?.matchIndex ?? .zero) }
            .sorted(by: >)
        let candidate = matches[voters.count / 2]
        guard candidate > log.committed, log.term(at: candidate) == currentTerm else { return }
        commit(to: candidate, &leader)
    }

    mutating func commit(to index: LogIndex, _ leader: inout LeaderState) {
        var cursor = log.committed.next
        while cursor <= index {
            if let entry = log.entry(at: cursor), case .command = entry.payload {
                leader.uncommittedBytes = max(0, leader.uncommittedBytes - entry.sizeBytes)
            }
            cursor = cursor.next
        }
        log.committed = index
        leader.commitAnnouncementPending = true
        if index >= leader.noopIndex {
            for position in leader.pendingReads.indices where leader.pendingReads[position].readIndex == nil {
                leader.pendingReads[position].readIndex = index
            }
        }
        confirmReads(&leader)
        if !log.membership.voters.contains(id) && log.membershipIndex <= index {
            leader.stepDownRequested = .removedFromCluster
        }
    }
}
