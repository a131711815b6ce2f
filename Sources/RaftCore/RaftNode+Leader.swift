/// What clients ask of a leader: proposals, membership changes, leadership transfer.
extension RaftNode {
    /// Appends `command` to the log if this node leads. The command took effect if and only if
    /// the entry applied at the receipt's index has the receipt's term.
    public mutating func propose(_ command: [UInt8]) throws(ProposalError) -> ProposalReceipt {
        precondition(!readyOutstanding, "propose called between takeReady and advance")
        let result: Result<ProposalReceipt, ProposalError>? = withLeader { node, leader in
            if let transfer = leader.transfer { return .failure(.leadershipTransferInProgress(target: transfer.target)) }
            let entry = Entry(term: node.currentTerm, index: node.log.lastIndex.next, payload: .command(command))
            // One entry is always admitted when nothing is outstanding, however large.
            if leader.uncommittedBytes > 0 && leader.uncommittedBytes + entry.sizeBytes > node.configuration.uncommittedBytesMax {
                return .failure(.uncommittedBytesLimit)
            }
            leader.uncommittedBytes += entry.sizeBytes
            node.appendAsLeader(entry, &leader)
            return .success(ProposalReceipt(index: entry.index, term: entry.term))
        }
        guard let result else { throw .notLeader(leaderHint: leaderID) }
        return try result.get()
    }

    /// Proposes one single-server membership change (thesis §4.1). It is refused while another
    /// change is uncommitted, or before this leader's no-op has committed (the safety fix to
    /// single-server changes, thesis §4.1 erratum). Removing the leader itself starts a
    /// leadership transfer instead; retry the removal at the new leader.
    public mutating func proposeMembershipChange(_ change: MembershipChange) throws(ProposalError) -> ProposalReceipt {
        precondition(!readyOutstanding, "proposeMembershipChange called between takeReady and advance")
        let result: Result<ProposalReceipt, ProposalError>? = withLeader { node, leader in
            if let transfer = leader.transfer { return .failure(.leadershipTransferInProgress(target: transfer.target)) }
            guard node.log.committed >= leader.noopIndex, node.log.membershipIndex <= node.log.committed else {
                return .failure(.membershipChangePending)
            }
            let membership = node.log.membership
            if case .remove(let removed) = change, removed == node.id {
                let others = membership.voters.subtracting([node.id])
                // Hand over to the most up-to-date voter (ties broken by the lowest id).
                guard let target = others.sorted().max(by: {
                    (leader.progress[$0]?.matchIndex ?? .zero) < (leader.progress[$1]?.matchIndex ?? .zero)
                }) else { return .failure(.invalidMembershipChange("cannot remove the last voter")) }
                node.startTransfer(to: target, &leader)
                return .failure(.leadershipTransferInProgress(target: target))
            }
            if case .promote(let learner) = change, let progress = leader.progress[learner],
                node.log.lastIndex.rawValue - min(progress.matchIndex.rawValue, node.log.lastIndex.rawValue)
                    > UInt64(node.configuration.entriesPerAppendMax)
            {
                return .failure(.learnerNotCaughtUp(learner))
            }
            let next: ClusterMembership
            switch membership.applying(change) {
            case .success(let value): next = value
            case .failure(let error): return .failure(error)
            }
            let entry = Entry(term: node.currentTerm, index: node.log.lastIndex.next, payload: .membership(next))
            node.appendAsLeader(entry, &leader)
            return .success(ProposalReceipt(index: entry.index, term: entry.term))
        }
        guard let result else { throw .notLeader(leaderHint: leaderID) }
        return try result.get()
    }

    /// Hands leadership to `target` (thesis §3.10): new proposals are refused, the target is
    /// brought up to date, then told to start an election at once. Gives up after an election
    /// timeout.
    public mutating func transferLeadership(to target: NodeID) throws(ProposalError) {
        precondition(!readyOutstanding, "transferLeadership called between takeReady and advance")
        let result: ProposalError?? = withLeader { node, leader in
            if target == node.id { return nil }
            guard node.log.membership.voters.contains(target) else {
                return .invalidMembershipChange("node \(target) is not a voter")
            }
            node.startTransfer(to: target, &leader)
            return nil
        }
        guard let result else { throw .notLeader(leaderHint: leaderID) }
        if let error = result { throw error }
    }

    /// On a leader, how much of the log `member` is known to hold (its matchIndex, Figure 2); nil
    /// on other roles, for this node itself, and for a non-member.
    public func matchIndex(of member: NodeID) -> LogIndex? {
        leaderState?.progress[member]?.matchIndex
    }

    /// On a leader, the voter with the most of the log (ties: lowest id) among those heard from
    /// within an election timeout and not reported unreachable since — where a leader should hand over before it stops (a voter that
    /// is down would only make the stop wait out the transfer). Nil on other roles, in a
    /// single-voter cluster, or when no other voter answers.
    public var bestTransferTarget: NodeID? {
        guard let leader = leaderState else { return nil }
        let live = log.membership.voters.subtracting([id]).filter { voter in
            guard let progress = leader.progress[voter], !progress.reportedUnreachable else { return false }
            return ticksElapsed - min(ticksElapsed, progress.lastHeardTick) <= UInt64(configuration.electionTimeoutTicks)
        }
        return live.sorted().max {
            (leader.progress[$0]?.matchIndex ?? .zero) < (leader.progress[$1]?.matchIndex ?? .zero)
        }
    }

    mutating func startTransfer(to target: NodeID, _ leader: inout LeaderState) {
        if leader.transfer?.target == target { return }
        leader.transfer = LeaderState.Transfer(target: target, elapsedTicks: 0, timeoutNowSent: false)
        continueTransfer(&leader)
        replicate(to: target, &leader)
    }

    /// Sends TimeoutNow once the transfer target holds the whole log.
    mutating func continueTransfer(_ leader: inout LeaderState) {
        guard var transfer = leader.transfer, !transfer.timeoutNowSent,
            leader.progress[transfer.target]?.matchIndex == log.lastIndex
        else { return }
        transfer.timeoutNowSent = true
        leader.transfer = transfer
        send(transfer.target, .timeoutNow)
    }

    mutating func appendAsLeader(_ entry: Entry, _ leader: inout LeaderState) {
        log.appendAsLeader([entry])
        if case .membership(let membership) = entry.payload {
            // The new membership is in force from now on (thesis §4.1): track exactly its members.
            for member in membership.allMembers where member != id && leader.progress[member] == nil {
                leader.progress[member] = Progress(matchIndex: .zero, nextIndex: entry.index, trackedSinceTick: ticksElapsed)
            }
            for member in leader.progress.keys where !membership.allMembers.contains(member) {
                leader.progress[member] = nil
            }
        }
        leader.replicationPending = true
        // A single voter commits once its own disk has the entry (see `advance`).
    }
}
