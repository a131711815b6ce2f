import RaftCore

/// The checks run on every running server after every event.
extension InvariantChecker {
    /// Compares what `server` shows now with what it showed after the previous event.
    /// `leadersNow` lists the servers leading right now, for Leader Completeness on new commits.
    mutating func observe(_ server: SimServer, leadersNow: [SimServer]) throws(InvariantViolation) {
        guard let node = server.node else { return }
        let status = node.status
        let before = server.seen
        let id = server.id
        // Within one incarnation nothing of this may go back (across restarts, see `checkRestart`).
        guard status.currentTerm >= before.term else {
            throw InvariantViolation(invariant: "Monotonic term", detail: "node \(id) went from term \(before.term) to \(status.currentTerm)")
        }
        guard status.commitIndex >= before.commit, status.appliedIndex >= before.applied else {
            throw InvariantViolation(
                invariant: "Monotonic commit/applied",
                detail: "node \(id) went from commit \(before.commit) applied \(before.applied) to commit "
                    + "\(status.commitIndex) applied \(status.appliedIndex)")
        }
        guard status.appliedIndex <= status.commitIndex, status.commitIndex <= status.lastLogIndex else {
            throw InvariantViolation(
                invariant: "applied ≤ commit ≤ last index",
                detail: "node \(id): applied \(status.appliedIndex), commit \(status.commitIndex), last \(status.lastLogIndex)")
        }
        if status.role == .leader { try checkLeader(node, status: status, before: before) }
        if status.commitIndex > before.commit {
            try recordCommits(node, from: before.commit.next, through: status.commitIndex, leadersNow: leadersNow)
        }
        server.seen = SimServer.Observation(
            term: status.currentTerm, role: status.role, commit: status.commitIndex, applied: status.appliedIndex,
            lastIndex: status.lastLogIndex, lastTerm: status.lastLogTerm)
    }

    /// Election Safety, Leader Append-Only, and Leader Completeness for a newly seen leader.
    private mutating func checkLeader(
        _ node: RaftNode, status: RaftStatus, before: SimServer.Observation
    ) throws(InvariantViolation) {
        let term = status.currentTerm
        if let other = leaders[term], other != status.id {
            throw InvariantViolation(
                invariant: "Election Safety", detail: "nodes \(other) and \(status.id) both led term \(term)")
        }
        if before.role == .leader && before.term == term {
            // Leader Append-Only: the last entry seen must still be there, with its term.
            let kept = node.term(at: before.lastIndex)
            guard status.lastLogIndex >= before.lastIndex, kept == nil || kept == before.lastTerm else {
                throw InvariantViolation(
                    invariant: "Leader Append-Only",
                    detail: "leader \(status.id) of term \(term) had \(before.lastIndex)/\(before.lastTerm), now "
                        + "last \(status.lastLogIndex) with term \(kept.map(\.description) ?? "none") there")
            }
        }
        guard leaders[term] == nil else { return }
        leaders[term] = status.id
        // A new leader must hold every entry committed in an earlier term (§5.4).
        var index = status.snapshotIndex.next
        while index <= maxCommitted {
            if let done = committed[index], done.commitTerm < term, node.term(at: index) != done.term {
                throw InvariantViolation(
                    invariant: "Leader Completeness",
                    detail: "node \(status.id) leads term \(term) without committed entry \(index)/\(done.term) "
                        + "(committed in term \(done.commitTerm)); it has \(node.term(at: index).map(\.description) ?? "nothing") there")
            }
            index = index.next
        }
    }

    /// Records entries newly seen committed and checks them against earlier commits and against
    /// every current leader of a later term.
    private mutating func recordCommits(
        _ node: RaftNode, from start: LogIndex, through end: LogIndex, leadersNow: [SimServer]
    ) throws(InvariantViolation) {
        let status = node.status
        let entries = node.entries
        var index = max(start, status.snapshotIndex.next)
        while index <= end {
            let position = Int(index.rawValue - status.snapshotIndex.rawValue - 1)
            guard position < entries.count else { break }
            let entry = entries[position]
            if let known = committed[index] {
                guard known.term == entry.term, known.payload == entry.payload else {
                    throw InvariantViolation(
                        invariant: "State Machine Safety (commit)",
                        detail: "node \(status.id) commits \(index)/\(entry.term) but \(index)/\(known.term) was committed before")
                }
                if status.role == .leader && status.currentTerm < known.commitTerm {
                    committed[index]?.commitTerm = status.currentTerm
                }
            } else {
                committed[index] = Committed(term: entry.term, payload: entry.payload, commitTerm: status.currentTerm)
                maxCommitted = max(maxCommitted, index)
                try checkLaterLeaders(hold: entry, commitTerm: status.currentTerm, leadersNow: leadersNow)
            }
            index = index.next
        }
    }

    private func checkLaterLeaders(hold entry: Entry, commitTerm: Term, leadersNow: [SimServer]) throws(InvariantViolation) {
        for leader in leadersNow {
            guard let node = leader.node, node.isLeader else { continue }
            let status = node.status
            guard status.currentTerm > commitTerm, entry.index > status.snapshotIndex else { continue }
            guard node.term(at: entry.index) == entry.term else {
                throw InvariantViolation(
                    invariant: "Leader Completeness",
                    detail: "entry \(entry.index)/\(entry.term) committed in term \(commitTerm) is missing from leader "
                        + "\(status.id) of term \(status.currentTerm)")
            }
        }
    }

    /// After a restart: the durable term never goes below a term the server revealed, and a vote
    /// it granted on the wire is still recorded (at most one vote per term across restarts).
    func checkRestart(_ server: SimServer, state: PersistentState) throws(InvariantViolation) {
        let hard = state.hardState
        guard hard.currentTerm >= server.exposedTerm else {
            throw InvariantViolation(
                invariant: "Durable term",
                detail: "node \(server.id) restarted in term \(hard.currentTerm) after sending messages in term \(server.exposedTerm)")
        }
        if let granted = vote(of: server.id, in: hard.currentTerm), hard.votedFor != granted {
            throw InvariantViolation(
                invariant: "Durable vote",
                detail: "node \(server.id) voted for \(granted) in term \(hard.currentTerm) but restarted with vote "
                    + "\(hard.votedFor.map(\.description) ?? "none")")
        }
    }
}
