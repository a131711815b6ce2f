import KVStore
import RaftCore

/// `MEMBER ...` (docs/PROTOCOL.md, "Membership"): single-server membership changes with learners
/// (Raft thesis §4.1, §4.2.1), and the members' addresses, which `kv_members` replicates. A change
/// is two entries proposed together, the membership entry first: an add records the addresses
/// after the learner, a removal forgets them after the member; the client is answered when the
/// second applies, so both are committed.
extension RaftDriver {
    func startMember(_ request: MemberRequest, routing: CommandRouting, deadline: UInt64, reply: Responder) {
        // A follower answers LIST from its own view, unless the connection asked for redirects
        // (kvctl does): then the leader's view, with its match indexes, is the one wanted.
        if case .list = request, node.isLeader || !routing.redirects {
            reply.send(memberList())
            return
        }
        guard node.isLeader else {
            reply.send(notLeaderReply(nil))
            return
        }
        // The members' addresses must be recorded before the first change, so that the seed
        // (computed from the membership before it) comes first in the log.
        if recordedMembers().isEmpty {
            guard machine.highestTerm == node.status.currentTerm else {
                reply.send(membershipErrorReply(.membershipChangePending, change: nil))
                return
            }
            seedMembersIfEmpty()
        }
        switch request {
        case .list: return
        case .add(var member):
            member.clusterID = settings.clusterID
            if let problem = addressConflict(member) {
                reply.send(.err(problem))
                return
            }
            if node.status.membership.learners.contains(NodeID(member.id)) {
                // Already a learner (an earlier ADD whose addresses were not recorded, or a
                // retry): record the addresses again, which is harmless.
                proposeAddresses(member, deadline: deadline, reply: reply)
                return
            }
            proposeChange(.addLearner(NodeID(member.id)), then: .memberSet(member), deadline: deadline, reply: reply)
        case .promote(let id):
            // RaftCore measures catch-up against the log's length; a learner that has never
            // answered (match index 0) is not caught up however short the log (thesis §4.2.1).
            if node.status.membership.learners.contains(NodeID(id)), (node.matchIndex(of: NodeID(id)) ?? .zero) == .zero {
                reply.send(membershipErrorReply(.learnerNotCaughtUp(NodeID(id)), change: .promote(NodeID(id))))
                return
            }
            proposeChange(.promote(NodeID(id)), then: nil, deadline: deadline, reply: reply)
        case .remove(let id):
            proposeChange(.remove(NodeID(id)), then: .memberRemove(id: id), deadline: deadline, reply: reply)
        }
    }

    /// Proposes `change`, then `operation` (if any); the client hears when the last one applies.
    func proposeChange(_ change: MembershipChange, then operation: KVOperation?, deadline: UInt64, reply: Responder) {
        let addresses: String
        if case .memberSet(let member)? = operation { addresses = Self.text(member) } else { addresses = addressText(of: change) }
        let receipt: ProposalReceipt
        do {
            receipt = try node.proposeMembershipChange(change)
        } catch {
            reply.send(membershipErrorReply(error, change: change))
            return
        }
        logger.info(
            "membership change proposed: \(changeName(change))",
            metadata: ["index": "\(receipt.index)", "term": "\(receipt.term)", "addresses": "\(addresses)"])
        let pending = PendingWrite(term: receipt.term, kind: .membershipChange, deadline: deadline, reply: reply)
        guard let operation else {
            requests.addWrite(pending, at: receipt.index)
            return
        }
        let command = KVCommand(session: nil, timestampMillis: wallMillis(), operation: operation)
        do {
            let second = try node.propose(command.encoded())
            requests.addWrite(pending, at: second.index)
        } catch {
            // The change itself is proposed; only its addresses are not (retrying ADD rewrites them).
            requests.addWrite(pending, at: receipt.index)
        }
    }

    /// Records `member`'s addresses alone; the client hears when they apply.
    func proposeAddresses(_ member: MemberAddresses, deadline: UInt64, reply: Responder) {
        let command = KVCommand(session: nil, timestampMillis: wallMillis(), operation: .memberSet(member))
        do {
            let receipt = try node.propose(command.encoded())
            logger.info("member addresses proposed for learner \(member.id)", metadata: ["addresses": "\(Self.text(member))"])
            requests.addWrite(
                PendingWrite(term: receipt.term, kind: .membershipChange, deadline: deadline, reply: reply), at: receipt.index)
        } catch {
            reply.send(proposalErrorReply(error))
        }
    }

    func membershipErrorReply(_ error: ProposalError, change: MembershipChange?) -> Reply {
        switch error {
        case .learnerNotCaughtUp(let id):
            let match = node.matchIndex(of: id).map(\.description) ?? "unknown"
            return .err(
                "node \(id) has not caught up yet (it holds the log up to \(match) of \(node.status.lastLogIndex)); "
                    + "retry when 'kvctl member list' shows it close to the leader")
        case .membershipChangePending:
            return .err(
                "another membership change is pending (one at a time, and none before a new leader's first entry commits); retry shortly")
        case .invalidMembershipChange(let why):
            return .err("\(change.map(changeName) ?? "membership change") refused: \(why)")
        case .leadershipTransferInProgress(let target):
            if case .remove(let removed)? = change, removed == node.id {
                logger.info("removing the leader: handing leadership to node \(target) first", metadata: ["removed": "\(removed)"])
            }
            return proposalErrorReply(error)
        case .notLeader, .uncommittedBytesLimit, .tooManyPendingReads:
            return proposalErrorReply(error)
        }
    }

    /// Why `member`'s addresses cannot be added: one of them is another member's.
    func addressConflict(_ member: MemberAddresses) -> String? {
        let members = effectiveMembers().filter { $0.id != member.id }
        let mine = [member.peer, member.client] + (member.metrics.map { [$0] } ?? [])
        for other in members {
            let theirs = [other.peer, other.client] + (other.metrics.map { [$0] } ?? [])
            if let shared = mine.first(where: theirs.contains) {
                return "address \(shared) is already node \(other.id)'s"
            }
        }
        return nil
    }

    func changeName(_ change: MembershipChange) -> String {
        switch change {
        case .addLearner(let id): return "add node \(id) as a learner"
        case .promote(let id): return "promote node \(id) to voter"
        case .remove(let id): return "remove node \(id)"
        }
    }

    func addressText(of change: MembershipChange) -> String {
        let id: NodeID
        switch change {
        case .addLearner(let node), .promote(let node), .remove(let node): id = node
        }
        guard let member = effectiveMembers().first(where: { $0.id == id.rawValue }) else { return "unknown" }
        return Self.text(member)
    }

    static func text(_ member: MemberAddresses) -> String {
        "peer=\(member.peer) client=\(member.client)" + (member.metrics.map { " metrics=\($0)" } ?? "")
    }

    // MARK: Addresses

    /// `kv_members`' rows recorded by this cluster: a cluster restored from another's backup
    /// (under a new cluster id) ignores the old cluster's rows and seeds its own.
    func recordedMembers() -> [MemberAddresses] {
        ((try? machine.members()) ?? []).filter { $0.clusterID == settings.clusterID }
    }

    /// Every member's addresses: `cluster.conf`'s nodes, replaced by `kv_members`' rows, limited to
    /// the membership in force (a node with no membership yet, joining, keeps every configured node).
    func effectiveMembers() -> [MemberAddresses] {
        var byID: [UInt64: MemberAddresses] = [:]
        for member in settings.bootstrapMembers { byID[member.id] = member }
        for member in recordedMembers() { byID[member.id] = member }
        let membership = node.status.membership.allMembers
        return byID.values.filter { membership.isEmpty || membership.contains(NodeID($0.id)) }.sorted { $0.id < $1.id }
    }

    /// Hands the members' addresses to the transport and the redirects when they changed.
    func refreshMembers() {
        let members = effectiveMembers()
        let membership = node.status.membership.allMembers
        var addresses = settings.clientAddresses.filter { membership.isEmpty || membership.contains($0.key) }
        for member in members { addresses[NodeID(member.id)] = member.client }
        clientAddresses = addresses
        guard members != announcedMembers else { return }
        announcedMembers = members
        logger.info(
            "member addresses",
            metadata: ["members": "\(members.map { "\($0.id)=peer:\($0.peer),client:\($0.client)" }.joined(separator: " "))"])
        settings.membersChanged?(members)
    }

    /// A leader whose no-op has applied and finds `kv_members` empty (a new cluster, or one made
    /// before the table existed) records `cluster.conf`'s addresses of the current members, once a term.
    func seedMembersIfEmpty() {
        let status = node.status
        guard status.role == .leader, machine.highestTerm == status.currentTerm, membersSeededTerm != status.currentTerm,
            recordedMembers().isEmpty
        else { return }
        membersSeededTerm = status.currentTerm
        let seed = settings.bootstrapMembers.filter { status.membership.allMembers.contains(NodeID($0.id)) }
        for var member in seed {
            member.clusterID = settings.clusterID
            propose(
                .memberSet(member), session: nil, kind: .internalCommand,
                deadline: monotonicMillis() + settings.requestTimeoutMillis, routing: nil, reply: .none)
        }
        if !seed.isEmpty { logger.info("seeding the members' addresses from cluster.conf", metadata: ["members": "\(seed.count)"]) }
    }

    /// Logs each membership change as it takes effect here (appended, thesis §4.1) and keeps the
    /// transport in step; a node that finds itself outside the membership says it takes no part.
    func noteMembershipChanges() {
        let membership = node.status.membership
        guard membership != lastMembership else { return }
        logger.info("membership in force: \(membership)", metadata: ["was": "\(lastMembership)"])
        if lastMembership.allMembers.contains(node.id), !membership.allMembers.contains(node.id) {
            logger.info("this node was removed from the cluster; it takes no part from now on (it can be stopped)")
        }
        lastMembership = membership
        refreshMembers()
    }

    /// Logs the membership entries among `entries` as they commit and apply, with the members'
    /// addresses known here (a new member's are recorded by the entry after).
    func noteAppliedMemberships(_ entries: [Entry]) {
        for entry in entries {
            guard case .membership(let membership) = entry.payload else { continue }
            var known: [UInt64: MemberAddresses] = [:]
            for member in settings.bootstrapMembers { known[member.id] = member }
            for member in recordedMembers() { known[member.id] = member }
            let addresses = membership.allMembers.sorted().map { id in
                "\(id)=" + (known[id.rawValue].map { "peer:\($0.peer),client:\($0.client)" } ?? "unknown")
            }
            logger.info(
                "membership change committed and applied: \(membership)",
                metadata: ["index": "\(entry.index)", "addresses": "\(addresses.joined(separator: " "))"])
        }
    }
}
