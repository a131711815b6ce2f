import KVDaemon
import KVStore
import RaftCore

/// The operator of the KV simulation: now and then it replaces a voter the way the README's
/// runbook does — `MEMBER REMOVE`, then `MEMBER ADD` (a learner), then `MEMBER PROMOTE` once it
/// has caught up — one change at a time, through the leader's driver, while clients, crashes and
/// partitions go on. Every check of the simulation holds throughout (linearizability, lock and
/// fencing safety, at-most-once, lease rules).
extension KVSimulation {
    enum MembershipStep {
        case removing(NodeID)
        case adding(NodeID)
        case promoting(NodeID)
    }

    /// Starts a change now and then (only while faults are on), and moves one under way along as
    /// the leader's membership shows each step done, resending a step now and then (its reply is
    /// not awaited: a lost request, a crashed leader or a refusal is simply tried again).
    func changeMembership() {
        guard let leader = nodes.first(where: { $0.driver?.status.role == .leader }), let driver = leader.driver else { return }
        let membership = driver.status.membership
        switch membershipStep {
        case nil:
            guard faultsEnabled, random.chance(parameters.membershipPerMille), membership.voters.count == nodes.count,
                membership.learners.isEmpty,
                let victim = membership.voters.filter({ $0 != leader.id }).sorted().randomElement(using: &random)
            else { return }
            membershipStep = .removing(victim)
            note("operator: remove \(victim)")
            operate(.remove(victim.rawValue), at: leader)
        case .removing(let victim):
            if !membership.voters.contains(victim) && !membership.learners.contains(victim) {
                membershipStep = .adding(victim)
                note("operator: add \(victim) as a learner")
                operate(.add(addresses(of: victim)), at: leader)
            } else if random.chance(50) {
                operate(.remove(victim.rawValue), at: leader)
            }
        case .adding(let victim):
            if membership.learners.contains(victim) {
                membershipStep = .promoting(victim)
                operate(.promote(victim.rawValue), at: leader)
            } else if membership.voters.contains(victim) {
                // The removal never committed: a new leader's log did not have it.
                membershipStep = nil
                note("operator: the removal of \(victim) was lost; \(victim) is still a voter")
            } else if random.chance(50) {
                operate(.add(addresses(of: victim)), at: leader)
            }
        case .promoting(let victim):
            if membership.voters.contains(victim) {
                membershipStep = nil
                stats.membershipChanges += 1
                note("operator: \(victim) is a voter again")
            } else if !membership.learners.contains(victim) {
                // The addition never committed: add it again.
                membershipStep = .adding(victim)
            } else if random.chance(50) {
                operate(.promote(victim.rawValue), at: leader)
            }
        }
    }

    /// Whether the operator is in the middle of a change (the liveness phase waits for it).
    var membershipChangeUnderWay: Bool { membershipStep != nil }

    private func addresses(of node: NodeID) -> MemberAddresses {
        MemberAddresses(id: node.rawValue, peer: "10.0.0.\(node.rawValue):7100", client: "10.0.0.\(node.rawValue):7000", metrics: nil)
    }

    /// Hands `request` to the leader's driver as a client command whose reply nobody waits for.
    private func operate(_ request: MemberRequest, at leader: KVSimNode) {
        nextRequest += 1
        leader.inputs.append(.command(.member(request), routing: CommandRouting(), outbox.responder(for: nextRequest)))
    }
}
