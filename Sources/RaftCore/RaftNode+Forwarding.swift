/// Proposals a follower forwards to its leader. The Raft paper has a follower redirect clients
/// to the leader (§8); a follower may instead relay the command itself, and the leader appends
/// it exactly as a proposal of its own. An accepted forward carries no log index back (the
/// follower's driver recognises the entry when it applies it, by a tag inside the command); a
/// refused one is answered with `forwardedProposalRefused`, so the follower's client gets a
/// definite error. A forward is never re-sent, so a command forwarded once is appended at most
/// once; one lost on the way is indeterminate to its client.
extension RaftNode {
    /// Sends `command` to the leader this follower knows and returns that leader. `id` comes
    /// back in `Ready.refusedForwards` if the leader refuses the command; ids must increase from
    /// one forward to the next, across restarts too (see `admitForward`). Throws `notLeader` on a
    /// leader (propose there instead), and on a follower that knows no leader, a candidate or a
    /// pre-candidate: then nothing was sent.
    @discardableResult
    public mutating func forwardProposal(_ command: [UInt8], id: UInt64) throws(ProposalError) -> NodeID {
        precondition(!readyOutstanding, "forwardProposal called between takeReady and advance")
        guard case .follower = role, let leader = leaderID else { throw .notLeader(leaderHint: leaderID) }
        send(leader, .forwardedProposal(ForwardedProposal(id: id, command: command)))
        return leader
    }

    /// A leader appends a forwarded command as if a client had proposed it here, under the same
    /// rules (no proposals during a leadership transfer, the uncommitted-bytes bound). Any other
    /// node, and a leader that cannot take it, refuses it: it is neither appended nor passed on.
    mutating func handleForwardedProposal(from follower: NodeID, _ proposal: ForwardedProposal) {
        guard admitForward(proposal.id, from: follower) else { return }
        do {
            _ = try propose(proposal.command)
        } catch {
            let reason: ForwardedProposalRefusal.Reason
            switch error {
            case .leadershipTransferInProgress(let target): reason = .leadershipTransfer(target: target)
            case .uncommittedBytesLimit: reason = .uncommittedBytesLimit
            case .notLeader, .tooManyPendingReads, .membershipChangePending, .invalidMembershipChange, .learnerNotCaughtUp:
                reason = .notLeader(leaderHint: leaderID)
            }
            refuseForward(proposal, to: follower, reason)
        }
    }

    /// Whether forward `id` from `follower` is new, recording it. A follower numbers its
    /// forwards in increasing order, so one at or below the highest handled is a duplicate (or was
    /// overtaken by a later one): it is dropped without an answer, so that a copy of a command
    /// already appended is neither appended again nor refused (its client would be told, wrongly,
    /// that it did not take effect). The transport never duplicates; this keeps the rule true on
    /// a network that does.
    mutating func admitForward(_ id: UInt64, from follower: NodeID) -> Bool {
        if let seen = forwardsSeen[follower], id <= seen { return false }
        forwardsSeen[follower] = id
        return true
    }

    mutating func refuseForward(_ proposal: ForwardedProposal, to follower: NodeID, _ reason: ForwardedProposalRefusal.Reason) {
        send(follower, .forwardedProposalRefused(ForwardedProposalRefusal(id: proposal.id, reason: reason)))
    }

    mutating func handleForwardRefusal(_ refusal: ForwardedProposalRefusal) {
        let error: ProposalError
        switch refusal.reason {
        case .notLeader(let hint): error = .notLeader(leaderHint: hint)
        case .leadershipTransfer(let target): error = .leadershipTransferInProgress(target: target)
        case .uncommittedBytesLimit: error = .uncommittedBytesLimit
        }
        refusedForwards.append(RefusedForward(id: refusal.id, error: error))
    }
}
