/// Failover without waiting out the election timeout when the driver has evidence that the
/// leader is gone.
///
/// When a server's process dies, its kernel closes its connections at once; a follower that sees
/// its leader's connection end without a goodbye (or finds nobody listening) knows more than its
/// election timer does. `peerUnreachable` turns that evidence into an early pre-vote round.
///
/// Why it is safe whatever the evidence is worth: it changes no persistent state. It only ends
/// this follower's leader lease (thesis §4.2.3) early and starts a PreVote round (thesis §9.6),
/// which changes no term unless a majority grants it — and a follower that still hears from a
/// live leader refuses pre-votes within its own lease. A false alarm therefore costs one refused
/// pre-vote round, never a deposed leader. Election Safety and every other Raft property rest on
/// votes and terms, which follow the usual rules.
///
/// Why staggered: the followers of a dead leader all learn of it in the same instant. If all of
/// them campaigned at once, each would vote for itself and the vote would split, costing a whole
/// election timeout. Instead the remaining voters campaign in id order, `leaderLossStaggerTicks`
/// apart; the first usually wins, and if its log is behind (the others refuse it) the next one
/// tries a stagger later.
extension RaftNode {
    /// The driver's evidence that `peer` is gone, e.g. its connection ended without a goodbye or
    /// was refused. A voting follower whose leader is `peer` forgets the leader (ending its lease,
    /// so it grants other followers' pre-votes) and campaigns at its place in the stagger; a
    /// leader stops counting `peer` as a hand-over target until it answers again.
    public mutating func peerUnreachable(_ peer: NodeID) {
        if isLeader {
            // It keeps replicating to the peer (the connection may come back).
            withLeader { _, leader in leader.progress[peer]?.reportedUnreachable = true }
            return
        }
        guard case .follower = role, leaderID == peer, peer != id else { return }
        campaignAfterLeaderLoss(peer)
    }

    /// The driver's evidence that `peer` stopped answering although its connection is open (a
    /// paused process, a network that drops everything): weaker than `peerUnreachable`, since a
    /// busy leader looks the same for a while. A voting follower whose leader is `peer` keeps its
    /// lease — it goes on refusing other candidates — but when the lease ends (an election timeout
    /// after it last heard from the leader) it campaigns at its place in the stagger at once,
    /// instead of at its randomized timeout, up to another election timeout later. Hearing from
    /// the leader again withdraws the suspicion.
    public mutating func peerStalled(_ peer: NodeID) {
        guard case .follower = role, leaderID == peer, peer != id else { return }
        if electionElapsed >= configuration.electionTimeoutTicks {
            campaignAfterLeaderLoss(peer)
        } else {
            stalledLeader = peer
        }
    }

    /// Forgets the lost leader `peer` (ending the lease, so this node grants other followers'
    /// pre-votes) and campaigns at this node's place among the remaining voters.
    mutating func campaignAfterLeaderLoss(_ peer: NodeID) {
        stalledLeader = nil
        setLeader(nil)
        let voters = log.membership.voters
        guard voters.contains(id) else { return }
        let remaining = voters.subtracting([peer]).sorted()
        guard let rank = remaining.firstIndex(of: id) else { return }
        if rank == 0 {
            campaign()
            return
        }
        resetElectionTimer()
        let staggered = rank * configuration.leaderLossStaggerTicks
        if staggered < configuration.electionTimeoutTicks {
            randomizedElectionTimeout = staggered
        }
    }
}
