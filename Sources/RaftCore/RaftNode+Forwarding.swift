/// Proposals a follower forwards to its leader. The Raft paper has a follower redirect clients
/// to the leader (§8); a follower may instead relay the command itself, and the leader appends
/// it exactly as a proposal of its own. The forward is fire-and-forget: it carries no log index
/// (the follower cannot know it), so the follower's driver recognises the entry when it applies
/// it by a tag inside the command, and treats a forward it never sees applied as indeterminate.
/// A forward is never re-sent, so a command forwarded once is appended at most once.
extension RaftNode {
    /// Sends `command` to the leader this follower knows and returns that leader. Throws
    /// `notLeader` on a leader (propose there instead), and on a follower that knows no leader,
    /// a candidate or a pre-candidate: then nothing was sent.
    public mutating func forwardProposal(_ command: [UInt8]) throws(ProposalError) -> NodeID {
        precondition(!readyOutstanding, "forwardProposal called between takeReady and advance")
        guard case .follower = role, let leader = leaderID else { throw .notLeader(leaderHint: leaderID) }
        send(leader, .forwardedProposal(ForwardedProposal(command: command)))
        return leader
    }

    /// A leader appends a forwarded command as if a client had proposed it here, under the same
    /// rules (no proposals during a leadership transfer, the uncommitted-bytes bound). Anything
    /// else drops it: a node that does not lead, a refused proposal. The follower's client then
    /// gets an indeterminate timeout, which is what it would get if the message were lost.
    mutating func handleForwardedProposal(from follower: NodeID, _ proposal: ForwardedProposal) {
        guard isLeader else { return }
        _ = try? propose(proposal.command)
    }
}
