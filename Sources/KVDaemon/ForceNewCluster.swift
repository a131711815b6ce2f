import KVStore
import Logging
import RaftCore

/// `kvd --config FILE --id ID --force-new-cluster`: the last resort when a majority of the
/// cluster is gone for good (docs/CONFIGURATION.md, "Recovering from losing a majority"). Before
/// the node starts, its own log gets one more entry: a membership of this node alone (thesis
/// §4.1: the latest membership in a log is in force at once), at the index after its last entry,
/// in a term above every term it has seen. Every entry it holds (committed or not) is kept, so
/// indexes, and with them fencing tokens, and terms only go forward on this node. The node then
/// elects itself and commits everything in its log.
///
/// What it cannot do: entries the lost nodes committed but this node never received are gone,
/// and tokens they granted at those indexes may be higher than the next ones granted here (a
/// fenced resource then refuses the new ones until the log passes them). Run it on the survivor
/// with the highest last index, and never start the lost nodes again with their old data.
enum ForceNewCluster {
    /// What the rewrite did.
    struct Outcome {
        var index: LogIndex
        var term: Term
        var previous: ClusterMembership
    }

    /// Rewrites the log in `logPath` (already checked to open) so that `id` is the only member.
    /// Returns nil if it already was.
    static func rewrite(logPath: String, id: NodeID, bootstrap: ClusterMembership) throws(DaemonError) -> Outcome? {
        do {
            let storage = try SQLiteLogStorage(path: logPath)
            let state = try storage.load()
            // The membership the log itself records; without one the node would follow the
            // configuration file (which the operator may have edited already), so the entry is
            // written whatever the file says.
            let recorded =
                state.entries.reversed().lazy.compactMap { entry -> ClusterMembership? in
                    if case .membership(let membership) = entry.payload { return membership }
                    return nil
                }.first ?? state.snapshot?.metadata.membership
            let alone = ClusterMembership(voters: [id])
            guard recorded != alone else { return nil }
            let previous = recorded ?? bootstrap
            let lastIndex = state.entries.last?.index ?? state.snapshot?.metadata.lastIncludedIndex ?? .zero
            let lastTerm = state.entries.last?.term ?? state.snapshot?.metadata.lastIncludedTerm ?? .zero
            let term = Term(max(state.hardState.currentTerm.rawValue, lastTerm.rawValue) + 1)
            let entry = Entry(term: term, index: lastIndex.next, payload: .membership(alone))
            try storage.persist(
                hardState: HardState(currentTerm: term, votedFor: nil, commitIndex: state.hardState.commitIndex),
                entries: [entry], snapshot: nil, sync: true)
            return Outcome(index: entry.index, term: term, previous: previous)
        } catch {
            throw .storage(error)
        }
    }

    /// Logs what was done, loudly.
    static func report(_ outcome: Outcome?, id: NodeID, logger: Logger) {
        guard let outcome else {
            logger.warning("--force-new-cluster: node \(id) is already the only member; nothing rewritten")
            return
        }
        let members = "\(outcome.previous)"
        logger.warning(
            "--force-new-cluster: this node is now a ONE-NODE cluster; the other members (\(members)) are removed and must never be started again with their old data",
            metadata: ["index": "\(outcome.index)", "term": "\(outcome.term)"])
    }
}
