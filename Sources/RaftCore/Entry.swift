/// One entry of the replicated log (§5.3): a payload tagged with the term in which a leader
/// created it and its position.
public struct Entry: Hashable, Sendable {
    public var term: Term
    public var index: LogIndex
    public var payload: Payload

    public init(term: Term, index: LogIndex, payload: Payload) {
        self.term = term
        self.index = index
        self.payload = payload
    }

    /// What an entry carries.
    public enum Payload: Hashable, Sendable {
        /// The empty entry a leader appends at the start of its term (§8, thesis §6.4) so that
        /// it can commit entries of earlier terms and serve reads.
        case noop
        /// An opaque command for the state machine.
        case command([UInt8])
        /// The complete new cluster membership (thesis §4.1). It takes effect on every server
        /// as soon as it is appended to that server's log, committed or not.
        case membership(ClusterMembership)
    }

    /// Bytes this entry counts for in message-size and uncommitted-size limits: the payload plus
    /// a fixed header allowance, so that empty entries are never free.
    public var sizeBytes: Int {
        switch payload {
        case .noop: return Entry.headerBytes
        case .command(let data): return Entry.headerBytes + data.count
        case .membership(let membership): return Entry.headerBytes + 16 * membership.allMembers.count
        }
    }

    /// The fixed per-entry allowance used by `sizeBytes` (term, index and framing).
    public static let headerBytes = 24
}

/// The servers of a cluster: voters elect leaders and count towards commitment; learners
/// (non-voters) receive the log so that they can catch up before being promoted (thesis §4.2.1).
public struct ClusterMembership: Hashable, Sendable, CustomStringConvertible {
    public private(set) var voters: Set<NodeID>
    public private(set) var learners: Set<NodeID>

    /// Creates a membership; a node cannot be both a voter and a learner.
    public init(voters: Set<NodeID>, learners: Set<NodeID> = []) {
        precondition(voters.isDisjoint(with: learners), "a node cannot be both voter and learner")
        self.voters = voters
        self.learners = learners
    }

    /// Every node that receives the log.
    public var allMembers: Set<NodeID> { voters.union(learners) }

    /// How many voters make a majority.
    public var quorum: Int { voters.count / 2 + 1 }

    /// The membership after `change`, or the reason it cannot be made.
    public func applying(_ change: MembershipChange) -> Result<ClusterMembership, ProposalError> {
        var next = self
        switch change {
        case .addLearner(let id):
            guard !voters.contains(id), !learners.contains(id) else { return .failure(.invalidMembershipChange("node \(id) is already a member")) }
            next.learners.insert(id)
        case .promote(let id):
            guard learners.contains(id) else { return .failure(.invalidMembershipChange("node \(id) is not a learner")) }
            next.learners.remove(id)
            next.voters.insert(id)
        case .remove(let id):
            guard voters.contains(id) || learners.contains(id) else { return .failure(.invalidMembershipChange("node \(id) is not a member")) }
            if voters.contains(id) && voters.count == 1 { return .failure(.invalidMembershipChange("cannot remove the last voter")) }
            next.voters.remove(id)
            next.learners.remove(id)
        }
        return .success(next)
    }

    public var description: String {
        "voters=\(voters.sorted().map(\.description).joined(separator: ",")) learners=\(learners.sorted().map(\.description).joined(separator: ","))"
    }
}

/// One single-server membership change (thesis §4.1): at most one is uncommitted at a time.
public enum MembershipChange: Hashable, Sendable {
    /// Adds a non-voting member that receives the log.
    case addLearner(NodeID)
    /// Turns a caught-up learner into a voter.
    case promote(NodeID)
    /// Removes a voter or learner. Removing the leader makes it transfer leadership first.
    case remove(NodeID)
}
