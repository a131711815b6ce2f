import RaftCore

/// Leader Completeness, looking ahead: no server that lacks the highest committed entry may be
/// able to win an election from the cluster's current state. Waiting for such a server to
/// actually win needs a lucky schedule (Figure 8 needs three leaders in a row); checking that it
/// *could* win finds the same bug as soon as the dangerous state exists.
///
/// The check is sound for a correct Raft: a voter grants a vote when the candidate's log is at
/// least as up-to-date as its own (§5.4.1); terms, leases and earlier votes only delay that, and
/// the adversary (this simulator) can always wait them out, drop every other message, and crash
/// a voter so that it restarts from its disk. So if a quorum of the candidate's own voter set
/// would accept its log, an election that loses the committed entry is reachable.
extension Simulation {
    /// What a possible candidate would campaign with.
    struct CandidateView {
        var voters: Set<NodeID>
        var lastIndex: LogIndex
        var lastTerm: Term
        /// Whether it holds (or has snapshotted past) the entry `index`/`term`.
        var holds: (LogIndex, Term) -> Bool
    }

    func checkCommittedEntrySurvivesElections() throws(InvariantViolation) {
        let index = checker.maxCommitted
        guard index > .zero, let committed = checker.committed[index] else { return }
        for candidate in servers {
            for view in candidateViews(candidate) {
                try check(view, of: candidate.id, lacking: index, term: committed.term)
            }
        }
    }

    private func check(_ view: CandidateView, of candidate: NodeID, lacking index: LogIndex, term: Term) throws(InvariantViolation) {
        guard view.voters.contains(candidate), !view.holds(index, term) else { return }
        var granted: [NodeID] = [candidate]
        for voter in view.voters.sorted() where voter != candidate {
            guard let voterServer = server(voter) else { continue }
            let grants = logTips(voterServer).contains { tip in
                view.lastTerm > tip.term || (view.lastTerm == tip.term && view.lastIndex >= tip.index)
            }
            if grants { granted.append(voter) }
        }
        guard granted.count < view.voters.count / 2 + 1 else {
            throw InvariantViolation(
                invariant: "Leader Completeness (electable server lacks a committed entry)",
                detail: "entry \(index)/\(term) is committed, but node \(candidate) (last \(view.lastIndex)/"
                    + "\(view.lastTerm), lacking it) would get votes from \(granted.map(\.description).joined(separator: ",")) "
                    + "of voters \(view.voters.sorted().map(\.description).joined(separator: ",")) and could lead without it")
        }
    }

    /// A running server campaigns with its in-memory log, or crashes and restarts from its disk.
    private func candidateViews(_ server: SimServer) -> [CandidateView] {
        var views: [CandidateView] = []
        if let node = server.node {
            let status = node.status
            views.append(
                CandidateView(
                    voters: status.membership.voters, lastIndex: status.lastLogIndex, lastTerm: status.lastLogTerm,
                    holds: { index, term in index <= status.snapshotIndex || node.term(at: index) == term }))
        }
        let state = server.storage.durable
        let snapshotIndex = state.snapshot?.metadata.lastIncludedIndex ?? .zero
        var membership = state.snapshot?.metadata.membership ?? bootstrap
        for entry in state.entries.reversed() {
            if case .membership(let latest) = entry.payload {
                membership = latest
                break
            }
        }
        let tip = durableTip(server)
        views.append(
            CandidateView(
                voters: membership.voters, lastIndex: tip.index, lastTerm: tip.term,
                holds: { index, term in
                    index <= snapshotIndex || state.entries.first(where: { $0.index == index })?.term == term
                }))
        return views
    }

    /// The logs a voter may compare a candidate's with: its in-memory one, or its disk's after a crash.
    private func logTips(_ server: SimServer) -> [(index: LogIndex, term: Term)] {
        var tips = [durableTip(server)]
        if let status = server.node?.status { tips.append((status.lastLogIndex, status.lastLogTerm)) }
        return tips
    }

    /// The last entry on `server`'s disk: what it would compare a candidate's log with after a
    /// crash (entries are always synced, so its in-memory log only adds a tail not yet written,
    /// which a leader may already have sent).
    private func durableTip(_ server: SimServer) -> (index: LogIndex, term: Term) {
        let state = server.storage.durable
        if let last = state.entries.last { return (last.index, last.term) }
        if let snapshot = state.snapshot { return (snapshot.metadata.lastIncludedIndex, snapshot.metadata.lastIncludedTerm) }
        return (.zero, .zero)
    }
}
