/// Linearizable reads without writing to the log (thesis §6.4). A read is answered with an
/// index, not data: it may be served once the state machine has applied that index.
extension RaftNode {
    /// Asks for a read index for read `id`. The outcome arrives in a later `Ready.readStates`.
    /// On the leader the read waits for this term's no-op to commit and for a quorum to confirm
    /// leadership in a heartbeat round that started after the request; a follower forwards it
    /// to the leader it knows.
    public mutating func requestRead(_ id: ReadRequestID) {
        precondition(!readyOutstanding, "requestRead called between takeReady and advance")
        switch role {
        case .leader:
            withLeader { node, leader in node.leaderRead(id, requester: node.id, &leader) }
        case .follower:
            guard let leader = leaderID else {
                readStates.append(ReadState(id: id, outcome: .failed(.notLeader(leaderHint: nil))))
                return
            }
            guard forwardedReads.count < configuration.pendingReadsMax else {
                readStates.append(ReadState(id: id, outcome: .failed(.tooManyPendingReads)))
                return
            }
            forwardedReads[id] = ForwardedRead(leader: leader, sentAtTick: ticksElapsed)
            send(leader, .readIndexRequest(ReadIndexRequest(id: id)))
        case .preCandidate, .candidate:
            readStates.append(ReadState(id: id, outcome: .failed(.notLeader(leaderHint: nil))))
        }
    }

    mutating func leaderRead(_ id: ReadRequestID, requester: NodeID, _ leader: inout LeaderState) {
        if let transfer = leader.transfer {
            finishRead(id, requester: requester, .failed(.leadershipTransferInProgress(target: transfer.target)))
            return
        }
        guard leader.pendingReads.count < configuration.pendingReadsMax else {
            finishRead(id, requester: requester, .failed(.tooManyPendingReads))
            return
        }
        let noopCommitted = log.committed >= leader.noopIndex
        leader.pendingReads.append(
            LeaderState.PendingRead(
                id: id, requester: requester, round: leader.round + 1,
                readIndex: noopCommitted ? log.committed : nil))
        leader.readRoundPending = true
        confirmReads(&leader)
    }

    /// Completes every read whose round a quorum acknowledged and whose index is known.
    mutating func confirmReads(_ leader: inout LeaderState) {
        guard !leader.pendingReads.isEmpty else { return }
        let voters = log.membership.voters
        let rounds = voters.map { $0 == id ? UInt64.max : (leader.progress[$0]?.ackedRound ?? 0) }.sorted(by: >)
        let confirmedRound = rounds[voters.count / 2]
        var waiting: [LeaderState.PendingRead] = []
        for read in leader.pendingReads {
            if read.round <= confirmedRound, let index = read.readIndex {
                finishRead(read.id, requester: read.requester, .ready(index))
            } else {
                waiting.append(read)
            }
        }
        leader.pendingReads = waiting
    }

    mutating func finishRead(_ id: ReadRequestID, requester: NodeID, _ outcome: ReadState.Outcome) {
        if requester == self.id {
            readStates.append(ReadState(id: id, outcome: outcome))
            return
        }
        switch outcome {
        case .ready(let index): send(requester, .readIndexResponse(ReadIndexResponse(id: id, readIndex: index)))
        case .failed: send(requester, .readIndexResponse(ReadIndexResponse(id: id, readIndex: nil)))
        }
    }

    /// Fails every read a deposed leader still held; none of them was answered.
    mutating func failPendingReads(_ leader: LeaderState, reason: ProposalError) {
        for read in leader.pendingReads { finishRead(read.id, requester: read.requester, .failed(reason)) }
    }

    mutating func handleReadIndexRequest(from requester: NodeID, _ request: ReadIndexRequest) {
        let handled: Void? = withLeader { node, leader in node.leaderRead(request.id, requester: requester, &leader) }
        if handled == nil {
            send(requester, .readIndexResponse(ReadIndexResponse(id: request.id, readIndex: nil)))
        }
    }

    mutating func handleReadIndexResponse(_ response: ReadIndexResponse) {
        guard forwardedReads.removeValue(forKey: response.id) != nil else { return }
        let outcome: ReadState.Outcome =
            response.readIndex.map { .ready($0) } ?? .failed(.notLeader(leaderHint: leaderID))
        readStates.append(ReadState(id: response.id, outcome: outcome))
    }

    /// Forwarded reads fail when the leader they went to is no longer ours.
    mutating func failForwardedReads() {
        for id in forwardedReads.keys.sorted(by: { $0.sequence < $1.sequence }) {
            readStates.append(ReadState(id: id, outcome: .failed(.notLeader(leaderHint: nil))))
        }
        forwardedReads.removeAll()
    }

    /// Forwarded reads unanswered for two election timeouts were lost on the way; fail them so
    /// the client can retry.
    mutating func expireForwardedReads() {
        guard !forwardedReads.isEmpty else { return }
        let limit = UInt64(2 * configuration.electionTimeoutTicks)
        for (id, read) in forwardedReads.sorted(by: { $0.key.sequence < $1.key.sequence })
        where ticksElapsed - read.sentAtTick > limit {
            forwardedReads[id] = nil
            readStates.append(ReadState(id: id, outcome: .failed(.notLeader(leaderHint: leaderID))))
        }
    }
}
