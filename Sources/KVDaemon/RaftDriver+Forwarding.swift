import KVStore
import RaftCore

/// How a connection wants a node that does not lead to treat its commands (docs/PROTOCOL.md,
/// "Followers").
public struct CommandRouting: Hashable, Sendable {
    /// `READONLY`: reads are served from this node's applied state at once, possibly stale.
    public var localReads: Bool
    /// `CLIENT REDIRECT ON`: a follower answers `-NOTLEADER` instead of forwarding.
    public var redirects: Bool

    public init(localReads: Bool = false, redirects: Bool = false) {
        self.localReads = localReads
        self.redirects = redirects
    }
}

/// Counts of what this node forwarded and received, for `INFO`.
struct ForwardingCounters {
    /// Reads this follower served at a read index it asked its leader for (thesis §6.4).
    var reads: UInt64 = 0
    /// Writes this follower sent to its leader.
    var writes: UInt64 = 0
    /// Forwarded writes this follower answered from its own apply result.
    var writesAnswered: UInt64 = 0
    /// Forwarded writes this node received as leader and appended.
    var writesReceived: UInt64 = 0
}

/// Any node serves every command: a follower serves linearizable reads at a read index from its
/// leader (thesis §6.4) and forwards writes to its leader (`RaftNode.forwardProposal`). A
/// forwarded command carries an origin tag (this node's id and a sequence number); the follower
/// answers its client when it applies that entry itself, with the result every replica computes.
extension RaftDriver {
    /// Whether a command of a connection with `routing` is forwarded (or its read confirmed through
    /// the leader) rather than redirected while this node does not lead.
    func forwards(_ routing: CommandRouting) -> Bool { settings.forwardsToLeader && !routing.redirects }

    /// Sends a write to the leader. Refused at once, definitely, when no leader is known or too
    /// many forwards wait; otherwise the client waits for the entry to apply here, or for the
    /// leader's refusal (definite too).
    func forward(_ operation: KVOperation, session: SessionStamp?, kind: PendingWrite.Kind, deadline: UInt64, reply: Responder) {
        guard requests.forwardCount < settings.forwardedWritesMax else {
            metrics.proposalsFailed.increment()
            reply.send(
                .err("server busy: \(settings.forwardedWritesMax) writes forwarded to the leader are unanswered; retry later"))
            return
        }
        forwardSequence &+= 1
        let origin = ProposalOrigin(nodeID: node.id.rawValue, sequence: forwardSequence)
        let command = KVCommand(session: session, timestampMillis: wallMillis(), operation: operation, origin: origin)
        do {
            try node.forwardProposal(command.encoded(), id: origin.sequence)
        } catch {
            metrics.proposalsFailed.increment()
            reply.send(proposalErrorReply(error))
            return
        }
        forwarding.writes += 1
        metrics.forwardedWrites.increment()
        requests.addForward(PendingWrite(term: node.status.currentTerm, kind: kind, deadline: deadline, reply: reply), origin: origin)
    }

    /// An applied entry this node forwarded answers its client (the leader computed the same
    /// result: the state machine is deterministic).
    func finishForwarded(_ outcome: KVApplied) {
        guard let origin = outcome.origin, origin.nodeID == node.id.rawValue,
            let pending = requests.takeForward(origin: origin)
        else { return }
        forwarding.writesAnswered += 1
        answer(pending, with: outcome.result)
    }

    /// The leader refused a forward: it was not appended, so the client's error is definite.
    func finishRefusedForward(_ refused: RefusedForward) {
        guard let pending = requests.takeForward(origin: ProposalOrigin(nodeID: node.id.rawValue, sequence: refused.id))
        else { return }
        metrics.proposalsFailed.increment()
        pending.reply.send(proposalErrorReply(refused.error))
    }

    /// On a leader, a forwarded command gets this leader's clock (commands carry the leader's
    /// wall clock, `KVCommand.timestampMillis`), keeping its origin and session stamp. A command
    /// that does not decode is dropped: its follower's client times out.
    func restampForwarded(_ message: Message) -> Message? {
        guard case .forwardedProposal(let proposal) = message.body, node.isLeader else { return message }
        guard var command = try? KVCommand(decoding: proposal.command) else { return nil }
        command.timestampMillis = wallMillis()
        forwarding.writesReceived += 1
        var restamped = message
        restamped.body = .forwardedProposal(ForwardedProposal(id: proposal.id, command: command.encoded()))
        return restamped
    }

    /// The `INFO` lines about forwarding.
    func forwardingInfoLines() -> [String] {
        [
            "forwarding:\(settings.forwardsToLeader ? 1 : 0)", "forwarded_reads:\(forwarding.reads)",
            "forwarded_writes:\(forwarding.writes)", "forwarded_writes_answered:\(forwarding.writesAnswered)",
            "forwarded_writes_pending:\(requests.forwardCount)", "forwarded_writes_received:\(forwarding.writesReceived)",
        ]
    }
}
