/// Terms, votes and role changes (§5.1, §5.2, §5.4.1), with PreVote and the leader lease that
/// CheckQuorum makes possible (thesis §9.6, §4.2.3).
extension RaftNode {
    /// Applies the term rules every message obeys (Figure 2, "All Servers"). Returns false if the
    /// message must be dropped after that.
    mutating func admitTerm(of message: Message) -> Bool {
        if message.term > currentTerm {
            switch message.body {
            case .requestVote(let request):
                // Thesis §4.2.3: a server that heard from a leader within the minimum election
                // timeout ignores vote requests, so a removed or partitioned server cannot
                // depose a working leader. A transfer is the deliberate exception.
                if inLeaderLease && !request.isLeadershipTransfer { return false }
                // A pre-vote changes no state on the receiver.
                if request.isPreVote { return true }
                becomeFollower(term: message.term, leader: nil)
            case .requestVoteResponse(let response) where response.isPreVote && response.voteGranted:
                // Granted pre-votes carry the future term; they change no term.
                return true
            case .appendEntries, .installSnapshot:
                becomeFollower(term: message.term, leader: message.from)
            case .requestVoteResponse, .appendEntriesResponse, .installSnapshotResponse, .timeoutNow,
                .readIndexRequest, .readIndexResponse, .forwardedProposal, .forwardedProposalRefused:
                becomeFollower(term: message.term, leader: nil)
            }
            return true
        }
        if message.term < currentTerm {
            switch message.body {
            case .appendEntries(let request):
                // Tell a stale leader about the newer term so it steps down (Figure 2: reply false).
                // The reply travels in our term, which the sender may lead by now with a new round
                // count: echoing the old term's round would confirm ReadIndex rounds no follower
                // acknowledged (a stale read, simulator seed 17966). Round 0 confirms nothing.
                send(message.from, .appendEntriesResponse(AppendEntriesResponse(
                    success: false, matchIndex: .zero, rejectedIndex: request.prevLogIndex,
                    conflictIndex: log.lastIndex.next, round: 0)))
            case .installSnapshot:
                send(message.from, .appendEntriesResponse(AppendEntriesResponse(
                    success: false, matchIndex: .zero, round: 0)))
            case .requestVote(let request):
                send(message.from, .requestVoteResponse(RequestVoteResponse(voteGranted: false, isPreVote: request.isPreVote)))
            case .forwardedProposal(let proposal):
                // The sender thinks this node leads in an earlier term: tell it the command was
                // not appended (in our term, so it learns the newer one too).
                if admitForward(proposal.id, from: message.from) {
                    refuseForward(proposal, to: message.from, .notLeader(leaderHint: leaderID))
                }
            case .requestVoteResponse, .appendEntriesResponse, .installSnapshotResponse, .timeoutNow,
                .readIndexRequest, .readIndexResponse, .forwardedProposalRefused:
                break
            }
            return false
        }
        return true
    }

    /// Whether this node heard from a live leader within the minimum election timeout.
    var inLeaderLease: Bool {
        configuration.checkQuorum && leaderID != nil && electionElapsed < configuration.electionTimeoutTicks
    }

    /// AppendEntries or InstallSnapshot from the leader of the current term (§5.2): candidates
    /// give up, followers reset their election timer.
    mutating func recognizeLeader(_ leader: NodeID) {
        switch role {
        case .leader:
            // Election Safety makes this impossible; validate() already refused it.
            return
        case .preCandidate, .candidate:
            becomeFollower(term: currentTerm, leader: leader)
        case .follower:
            setLeader(leader)
            electionElapsed = 0
            stalledLeader = nil
        }
    }

    /// RequestVote receiver (Figure 2, §5.4.1), also for pre-votes.
    mutating func handleRequestVote(_ message: Message, _ request: RequestVote) {
        let candidate = message.from
        let canVote =
            votedFor == candidate
            || (votedFor == nil && leaderID == nil)
            || (request.isPreVote && message.term > currentTerm)
        let granted = canVote && log.isUpToDate(lastIndex: request.lastLogIndex, lastTerm: request.lastLogTerm)
        if request.isPreVote {
            // Answer a granted pre-vote in the candidate's future term, a refusal in ours.
            let term = granted ? message.term : currentTerm
            send(candidate, .requestVoteResponse(RequestVoteResponse(voteGranted: granted, isPreVote: true)), term: term)
            return
        }
        if granted {
            // The vote reaches the candidate only after the Ready that persists it (§5.1).
            votedFor = candidate
            electionElapsed = 0
        }
        send(candidate, .requestVoteResponse(RequestVoteResponse(voteGranted: granted, isPreVote: false)))
    }

    mutating func handleVoteResponse(_ message: Message, _ response: RequestVoteResponse) {
        let voters = log.membership.voters
        guard voters.contains(message.from) else { return }
        switch role {
        case .preCandidate(var votes):
            guard response.isPreVote else { return }
            // A granted pre-vote is for the term we would start; a refusal comes in ours.
            if response.voteGranted && message.term != currentTerm.next { return }
            votes[message.from] = response.voteGranted
            role = .preCandidate(votes: votes)
            switch tally(votes, voters: voters) {
            case .won: startElection(preVote: false, isLeadershipTransfer: false)
            case .lost: becomeFollower(term: currentTerm, leader: nil)
            case .pending: break
            }
        case .candidate(var votes):
            guard !response.isPreVote, message.term == currentTerm else { return }
            votes[message.from] = response.voteGranted
            role = .candidate(votes: votes)
            switch tally(votes, voters: voters) {
            case .won: becomeLeader()
            case .lost: becomeFollower(term: currentTerm, leader: nil)
            case .pending: break
            }
        case .follower, .leader:
            return
        }
    }

    enum Tally { case won, lost, pending }

    func tally(_ votes: [NodeID: Bool], voters: Set<NodeID>) -> Tally {
        let quorum = voters.count / 2 + 1
        let granted = voters.filter { votes[$0] == true }.count
        let refused = voters.filter { votes[$0] == false }.count
        if granted >= quorum { return .won }
        if refused > voters.count - quorum { return .lost }
        return .pending
    }

    /// Starts a pre-election (term unchanged) or an election (§5.2: increment the term, vote for
    /// self, ask every other voter).
    mutating func startElection(preVote: Bool, isLeadershipTransfer: Bool) {
        let voters = log.membership.voters
        guard voters.contains(id) else { return }
        resetElectionTimer()
        let electionTerm: Term
        if preVote {
            failForwardedReads()
            setLeader(nil)
            role = .preCandidate(votes: [id: true])
            electionTerm = currentTerm.next
        } else {
            currentTerm = currentTerm.next
            votedFor = id
            setLeader(nil)
            role = .candidate(votes: [id: true])
            electionTerm = currentTerm
        }
        let request = RequestVote(
            lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm, isPreVote: preVote,
            isLeadershipTransfer: isLeadershipTransfer)
        for voter in voters.sorted() where voter != id {
            send(voter, .requestVote(request), term: electionTerm)
        }
        // A single-voter cluster wins at once.
        if voters == [id] {
            if preVote { startElection(preVote: false, isLeadershipTransfer: isLeadershipTransfer) } else { becomeLeader() }
        }
    }

    /// Becomes a follower in `term` (a newer term clears the vote).
    mutating func becomeFollower(term: Term, leader: NodeID?) {
        precondition(term >= currentTerm, "terms never decrease")
        if term > currentTerm {
            currentTerm = term
            votedFor = nil
        }
        if case .leader(let state) = role { failPendingReads(state, reason: .notLeader(leaderHint: leader)) }
        role = .follower
        setLeader(leader)
        stalledLeader = nil
        resetElectionTimer()
    }

    /// Sets the known leader; forwarded reads fail when it changes, since the old leader may
    /// never answer them.
    mutating func setLeader(_ leader: NodeID?) {
        if leader != leaderID { failForwardedReads() }
        leaderID = leader
    }

    /// Wins the election of `currentTerm`: append the no-op that lets this leader commit earlier
    /// entries and serve reads (§8), and start replicating.
    mutating func becomeLeader() {
        guard case .candidate = role else { return }
        var leader = LeaderState()
        let next = log.lastIndex.next
        for member in log.membership.allMembers where member != id {
            leader.progress[member] = Progress(matchIndex: .zero, nextIndex: next, trackedSinceTick: ticksElapsed)
        }
        let noop = Entry(term: currentTerm, index: next, payload: .noop)
        log.appendAsLeader([noop])
        leader.noopIndex = next
        leader.replicationPending = true
        role = .leader(leader)
        setLeader(id)
        electionElapsed = 0
    }

    /// Leaves leadership for `reason` (CheckQuorum failed, or this node is no longer a voter).
    mutating func stepDownAsLeader(_ reason: LeaderState.StepDownReason) {
        switch reason {
        case .lostQuorum, .removedFromCluster:
            becomeFollower(term: currentTerm, leader: nil)
        }
    }
}
