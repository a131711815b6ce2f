import KVStore
import RaftCore

/// `MEMBER LIST` (docs/PROTOCOL.md, "Membership"): the members as this node sees them.
extension RaftDriver {
    /// One array per member: id, peer, client, metrics ("" if none), role ("voter", "learner", or
    /// "none" for addresses of a node outside the membership), the leader's match index (-1 when
    /// unknown: on a follower, or for a member not heard from), and reachability ("yes", "no",
    /// "self").
    func memberList() -> Reply {
        let status = node.status
        var byID: [UInt64: MemberAddresses] = [:]
        for member in settings.bootstrapMembers where status.membership.allMembers.contains(NodeID(member.id)) {
            byID[member.id] = member
        }
        for member in recordedMembers() { byID[member.id] = member }
        for id in status.membership.allMembers where byID[id.rawValue] == nil {
            byID[id.rawValue] = MemberAddresses(id: id.rawValue, peer: "", client: "")
        }
        let peers = settings.peerCounters?().peers
        let rows = byID.values.sorted { $0.id < $1.id }.map { member -> Reply in
            let id = NodeID(member.id)
            let role = status.membership.voters.contains(id) ? "voter" : status.membership.learners.contains(id) ? "learner" : "none"
            let match: Int64
            if id == status.id {
                match = Int64(clamping: status.lastLogIndex.rawValue)
            } else {
                match = node.matchIndex(of: id).map { Int64(clamping: $0.rawValue) } ?? -1
            }
            let reachable = id == status.id ? "self" : (peers?[id]?.connected ?? false) ? "yes" : "no"
            return .array([
                .integer(Int64(clamping: member.id)), .bulk(Array(member.peer.utf8)), .bulk(Array(member.client.utf8)),
                .bulk(Array((member.metrics ?? "").utf8)), .bulk(Array(role.utf8)), .integer(match), .bulk(Array(reachable.utf8)),
            ])
        }
        return .array(rows)
    }
}
