import RaftCore

/// A broken invariant: which one, and the facts that show it.
struct InvariantViolation: Error {
    var invariant: String
    var detail: String
}

/// The safety properties of Raft (Figure 3 of the paper) plus durability and read rules,
/// checked incrementally so that checking after every event stays cheap:
///
/// - Log Matching is checked on every entry any server writes: an (index, term) pair must always
///   carry the same payload and follow the same previous term, which by induction makes two logs
///   that share an (index, term) identical up to there.
/// - State Machine Safety is checked on every apply (index → term and payload) and by comparing
///   state-machine digests at equal applied indexes (which also covers snapshot installs).
/// - Leader Completeness is checked when a leader is first seen and when an entry is first seen
///   committed; the "commit term" of an entry is the term of the leader seen committing it.
struct InvariantChecker {
    struct EntryIdentity {
        var payload: Entry.Payload
        var previousTerm: Term
    }

    struct Committed {
        var term: Term
        var payload: Entry.Payload
        /// The term of the leader first seen with this index committed (an upper bound).
        var commitTerm: Term
    }

    struct IndexTerm: Hashable {
        var index: LogIndex
        var term: Term
    }

    struct Vote: Hashable {
        var voter: NodeID
        var term: Term
    }

    var leaders: [Term: NodeID] = [:]
    private var identities: [IndexTerm: EntryIdentity] = [:]
    var committed: [LogIndex: Committed] = [:]
    var maxCommitted: LogIndex = .zero
    private var applied: [LogIndex: (term: Term, payload: Entry.Payload)] = [:]
    private var digests: [LogIndex: UInt64] = [:]
    private var votes: [Vote: NodeID] = [:]
    /// For each key, the latest write a client saw acknowledged.
    private(set) var acked: [AckedWrite?] = Array(repeating: nil, count: KeyValueRegister.keyCount)

    // MARK: Entries written

    /// Log Matching: checks the entries a server is about to persist (`previousTerm` is the term
    /// of the entry just before the first one, on that server).
    mutating func checkWritten(_ entries: [Entry], previousTerm: Term, on server: NodeID) throws(InvariantViolation) {
        var previous = previousTerm
        for entry in entries {
            let key = IndexTerm(index: entry.index, term: entry.term)
            if let known = identities[key] {
                guard known.payload == entry.payload, known.previousTerm == previous else {
                    throw InvariantViolation(
                        invariant: "Log Matching",
                        detail: "node \(server) writes entry \(entry.index)/\(entry.term) with payload \(entry.payload) "
                            + "after term \(previous), but another log holds \(entry.index)/\(entry.term) with payload "
                            + "\(known.payload) after term \(known.previousTerm)")
                }
            } else {
                identities[key] = EntryIdentity(payload: entry.payload, previousTerm: previous)
            }
            previous = entry.term
        }
    }

    // MARK: Applies

    /// State Machine Safety: no two servers apply different entries at one index.
    mutating func checkApplied(_ entry: Entry, on server: NodeID, commitIndex: LogIndex) throws(InvariantViolation) {
        guard entry.index <= commitIndex else {
            throw InvariantViolation(
                invariant: "State Machine Safety (apply before commit)",
                detail: "node \(server) applies \(entry.index) with commit index \(commitIndex)")
        }
        if let first = applied[entry.index] {
            guard first.term == entry.term, first.payload == entry.payload else {
                throw InvariantViolation(
                    invariant: "State Machine Safety",
                    detail: "node \(server) applies \(entry.index)/\(entry.term) \(entry.payload) but \(entry.index)/"
                        + "\(first.term) \(first.payload) was applied before")
            }
        } else {
            applied[entry.index] = (entry.term, entry.payload)
        }
    }

    /// Replicas at the same applied index hold the same state (covers snapshot restores).
    mutating func checkDigest(_ machine: KeyValueRegister, on server: NodeID) throws(InvariantViolation) {
        let index = machine.appliedIndex
        guard index > .zero else { return }
        if let known = digests[index] {
            guard known == machine.digest else {
                throw InvariantViolation(
                    invariant: "State Machine Safety (state digest)",
                    detail: "node \(server) at applied index \(index) has a state that differs from another replica's")
            }
        } else {
            digests[index] = machine.digest
        }
    }

    // MARK: Votes and durability

    /// At most one vote per term per server, across restarts, as seen on the wire.
    mutating func recordSent(_ message: Message) throws(InvariantViolation) {
        guard case .requestVoteResponse(let response) = message.body, response.voteGranted, !response.isPreVote
        else { return }
        let vote = Vote(voter: message.from, term: message.term)
        if let earlier = votes[vote], earlier != message.to {
            throw InvariantViolation(
                invariant: "One vote per term",
                detail: "node \(message.from) granted its term-\(message.term) vote to \(earlier) and then to \(message.to)")
        }
        votes[vote] = message.to
    }

    /// The vote `voter` granted on the wire in `term`, if any.
    func vote(of voter: NodeID, in term: Term) -> NodeID? { votes[Vote(voter: voter, term: term)] }

    // MARK: Acknowledged writes and reads

    mutating func recordAcked(key: UInt8, _ write: AckedWrite) {
        if let current = acked[Int(key)], current.index >= write.index { return }
        acked[Int(key)] = write
    }

    /// A read served at `readIndex` from `machine` must observe every write acknowledged before
    /// the read was requested (linearizable reads, thesis §6.4).
    func checkRead(
        _ read: SimServer.PendingRead, readIndex: LogIndex, machine: KeyValueRegister, on server: NodeID
    ) throws(InvariantViolation) {
        for key in 0..<KeyValueRegister.keyCount {
            guard let write = read.mustObserve[key] else { continue }
            let seen = machine.slots[key]
            guard readIndex >= write.index, let seen, seen.index >= write.index else {
                throw InvariantViolation(
                    invariant: "Linearizable read",
                    detail: "read \(read.id) at node \(server) got read index \(readIndex) and sees key \(key) written "
                        + "by op \(seen.map { "\($0.operation) at \($0.index)" } ?? "nobody"), but op \(write.operation) "
                        + "was acknowledged at index \(write.index) before the read began")
            }
        }
    }
}
