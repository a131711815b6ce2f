import RaftCore

/// One thing that happened in a run, kept cheaply (rendered to text only for traces and failure
/// reports).
enum SimEvent {
    case deliver(Message, duplicate: Bool)
    case drop(Message, reason: String)
    case invalidMessage(Message, String)
    case roleChange(NodeID, RaftRole, Term)
    case crash(NodeID, point: String)
    case restart(NodeID, term: Term, commit: LogIndex, snapshot: LogIndex)
    case pause(NodeID, ticks: Int)
    case resume(NodeID)
    case partition(String)
    case heal
    case propose(NodeID, operation: UInt64, key: UInt8, result: String)
    case acknowledged(NodeID, operation: UInt64, index: LogIndex, term: Term)
    case readRequested(NodeID, ReadRequestID)
    case readServed(NodeID, ReadRequestID, readIndex: LogIndex, applied: LogIndex)
    case readFailed(NodeID, ReadRequestID, String)
    case membership(NodeID, MembershipChange, result: String)
    case transfer(NodeID, to: NodeID, result: String)
    case snapshot(NodeID, LogIndex)
    case phase(String)
    /// `NodeID` was told that `peer` cannot be reached (`RaftNode.peerUnreachable`).
    case unreachable(NodeID, peer: NodeID)
    /// `NodeID` was told that `peer` stopped answering (`RaftNode.peerStalled`).
    case stalled(NodeID, peer: NodeID)

    var text: String {
        switch self {
        case .deliver(let message, let duplicate): return "deliver \(Self.describe(message))\(duplicate ? " (dup)" : "")"
        case .drop(let message, let reason): return "drop \(Self.describe(message)): \(reason)"
        case .invalidMessage(let message, let why): return "INVALID \(Self.describe(message)): \(why)"
        case .roleChange(let id, let role, let term): return "node \(id) is \(role.rawValue) in term \(term)"
        case .crash(let id, let point): return "crash node \(id) (\(point))"
        case .restart(let id, let term, let commit, let snapshot):
            return "restart node \(id): term \(term), commit \(commit), snapshot \(snapshot)"
        case .pause(let id, let ticks): return "pause node \(id) for \(ticks) ticks"
        case .resume(let id): return "resume node \(id)"
        case .partition(let name): return "partition: \(name)"
        case .heal: return "heal network"
        case .propose(let id, let op, let key, let result): return "propose op \(op) key \(key) at \(id): \(result)"
        case .acknowledged(let id, let op, let index, let term): return "ack op \(op) at \(id): index \(index) term \(term)"
        case .readRequested(let id, let read): return "read \(read) requested at \(id)"
        case .readServed(let id, let read, let index, let applied):
            return "read \(read) served at \(id): read index \(index), applied \(applied)"
        case .readFailed(let id, let read, let why): return "read \(read) failed at \(id): \(why)"
        case .membership(let id, let change, let result): return "membership \(change) at \(id): \(result)"
        case .transfer(let id, let target, let result): return "transfer leadership \(id) → \(target): \(result)"
        case .snapshot(let id, let index): return "snapshot node \(id) at \(index)"
        case .phase(let name): return "=== \(name) ==="
        case .unreachable(let id, let peer): return "node \(id) told node \(peer) is unreachable"
        case .stalled(let id, let peer): return "node \(id) told node \(peer) stopped answering"
        }
    }

    static func describe(_ message: Message) -> String {
        let head = "\(message.from)→\(message.to) t\(message.term)"
        switch message.body {
        case .requestVote(let r):
            return "\(head) \(r.isPreVote ? "PreVote" : "RequestVote") last=\(r.lastLogIndex)/\(r.lastLogTerm)"
                + (r.isLeadershipTransfer ? " transfer" : "")
        case .requestVoteResponse(let r):
            return "\(head) \(r.isPreVote ? "PreVote" : "Vote")Response granted=\(r.voteGranted)"
        case .appendEntries(let r):
            let terms = r.entries.map { "\($0.index)/\($0.term)" }.joined(separator: ",")
            return "\(head) AppendEntries prev=\(r.prevLogIndex)/\(r.prevLogTerm) [\(terms)] commit=\(r.leaderCommit) round=\(r.round)"
        case .appendEntriesResponse(let r):
            return "\(head) AppendResponse ok=\(r.success) match=\(r.matchIndex) rejected=\(r.rejectedIndex) "
                + "hint=\(r.conflictIndex)/\(r.conflictTerm.map(\.description) ?? "-") round=\(r.round)"
        case .installSnapshot(let r):
            return "\(head) InstallSnapshot \(r.metadata.lastIncludedIndex)/\(r.metadata.lastIncludedTerm) "
                + "offset=\(r.offset) bytes=\(r.data.count) done=\(r.done)"
        case .installSnapshotResponse(let r):
            return "\(head) SnapshotResponse \(r.lastIncludedIndex) received=\(r.bytesReceived) installed=\(r.installed) match=\(r.matchIndex)"
        case .timeoutNow: return "\(head) TimeoutNow"
        case .readIndexRequest(let r): return "\(head) ReadIndexRequest \(r.id)"
        case .readIndexResponse(let r): return "\(head) ReadIndexResponse \(r.id) index=\(r.readIndex.map(\.description) ?? "refused")"
        case .forwardedProposal(let r): return "\(head) ForwardedProposal \(r.id) bytes=\(r.command.count)"
        case .forwardedProposalRefused(let r): return "\(head) ForwardedProposalRefused \(r.id) \(r.reason)"
        }
    }
}

/// The last `capacity` events, for failure reports; optionally echoes every event (trace mode).
struct EventLog {
    let capacity: Int
    private var ring: [(tick: UInt64, event: SimEvent)] = []
    private var next = 0
    var echo: (@Sendable (String) -> Void)?

    init(capacity: Int) { self.capacity = capacity }

    mutating func record(_ event: SimEvent, tick: UInt64) {
        if let echo { echo("[\(tick)] \(event.text)") }
        if ring.count < capacity {
            ring.append((tick, event))
        } else {
            ring[next] = (tick, event)
        }
        next = (next + 1) % capacity
    }

    /// The kept events, oldest first, as text.
    var lines: [String] {
        let ordered = ring.count < capacity ? ring : Array(ring[next...] + ring[..<next])
        return ordered.map { "[\($0.tick)] \($0.event.text)" }
    }
}
