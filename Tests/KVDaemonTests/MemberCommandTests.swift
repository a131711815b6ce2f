import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// `MEMBER LIST | ADD | PROMOTE | REMOVE` on drivers (docs/PROTOCOL.md, "Membership"): single-server
/// changes with learners (thesis §4.1, §4.2.1), the members' addresses in `kv_members`, and the
/// errors a client gets for changes that make no sense.
@Suite struct MemberCommandTests {
    static func addresses(_ id: UInt64) -> MemberAddresses {
        MemberAddresses(id: id, peer: "127.0.0.1:\(7100 + id)", client: "127.0.0.1:\(7000 + id)")
    }

    /// Three nodes whose cluster.conf names `addresses(1...3)`.
    static func cluster() throws -> DriverCluster {
        try DriverCluster { settings in
            settings.bootstrapMembers = [1, 2, 3].map(addresses)
            settings.clientAddresses = Dictionary(uniqueKeysWithValues: (1...3).map { (NodeID($0), addresses($0).client) })
        }
    }

    static func error(_ reply: Reply) -> String? {
        guard case .error(let line) = reply else { return nil }
        return line
    }

    static func rows(_ reply: Reply) -> [(id: Int64, role: String, match: Int64)] {
        guard case .array(let rows?) = reply else { return [] }
        return rows.compactMap { row in
            guard case .array(let fields?) = row, fields.count == 7, case .integer(let id) = fields[0],
                case .bulk(let role?) = fields[4], case .integer(let match) = fields[5]
            else { return nil }
            return (id, String(decoding: role, as: UTF8.self), match)
        }
    }

    @Test func aLeaderSeedsTheAddressesFromClusterConf() throws {
        let cluster = try Self.cluster()
        try cluster.electLeader()
        try cluster.tick(3)
        for id in cluster.ids {
            let recorded = [UInt64(1), 2, 3].map { id in
                var member = Self.addresses(id)
                member.clusterID = "test"
                return member
            }
            #expect(try cluster.driver(id).machine.members() == recorded, "node \(id)")
        }
        let list = Self.rows(try cluster.call(["MEMBER", "LIST"], at: try #require(cluster.leader)))
        #expect(list.map { $0.id } == [1, 2, 3])
        #expect(list.allSatisfy { $0.role == "voter" && $0.match > 0 })
        // A follower answers from its own view (no match indexes for others), or redirects a
        // connection that asked for redirects to the leader.
        let follower = try #require(cluster.followers.first)
        let local = Self.rows(try cluster.call(["MEMBER", "LIST"], at: follower))
        #expect(local.map { $0.id } == [1, 2, 3])
        #expect(local.filter { $0.id != Int64(follower.rawValue) }.allSatisfy { $0.match == -1 })
        let redirected = try cluster.call(["MEMBER", "LIST"], at: follower, routing: CommandRouting(redirects: true))
        #expect(Self.error(redirected)?.hasPrefix("NOTLEADER") == true)
    }

    @Test func addCatchUpPromoteThenRemove() throws {
        let cluster = try Self.cluster()
        let leader = try cluster.electLeader()
        try cluster.tick(3)
        #expect(try cluster.call(["SET", "before", "1"], at: leader) == .ok)
        try cluster.startJoiner(4)
        let four = Self.addresses(4)
        #expect(try cluster.call(["MEMBER", "ADD", "4", four.peer, four.client], at: leader) == .ok)
        try cluster.tick(5)
        let joiner = try cluster.driver(4)
        #expect(joiner.status.membership == ClusterMembership(voters: [1, 2, 3], learners: [4]))
        #expect(try joiner.machine.members().map { $0.id } == [1, 2, 3, 4])
        #expect(joiner.clientAddresses[1] == Self.addresses(1).client, "the joiner learnt the others' addresses")
        #expect(try cluster.driver(leader).clientAddresses[4] == four.client)
        #expect(Self.rows(try cluster.call(["MEMBER", "LIST"], at: leader)).last.map { $0.role } == "learner")
        #expect(try cluster.call(["MEMBER", "PROMOTE", "4"], at: leader) == .ok)
        try cluster.tick(3)
        #expect(joiner.status.membership.voters == [1, 2, 3, 4])
        #expect(try cluster.call(["SET", "after", "2"], at: leader) == .ok)
        try cluster.tick(2)
        #expect(try joiner.machine.get(Array("before".utf8))?.value == Array("1".utf8))
        #expect(try joiner.machine.get(Array("after".utf8))?.value == Array("2".utf8))
        // Remove a follower other than 4: its addresses go too.
        let removed = try #require(cluster.followers.first { $0 != 4 })
        #expect(try cluster.call(["MEMBER", "REMOVE", "\(removed.rawValue)"], at: leader) == .ok)
        try cluster.tick(3)
        #expect(try cluster.driver(leader).status.membership.voters == Set([1, 2, 3, 4]).subtracting([removed]))
        #expect(try cluster.driver(leader).machine.members().map { $0.id }.contains(removed.rawValue) == false)
        #expect(try cluster.driver(leader).clientAddresses[removed] == nil)
    }

    /// A cluster restored from another's backup keeps that cluster's rows in its state; under its
    /// new cluster id it ignores them, and its leader records its own.
    @Test func rowsOfAnotherClusterAreIgnoredAndReseeded() throws {
        let cluster = try Self.cluster()
        let leader = try cluster.electLeader()
        let driver = try cluster.driver(leader)
        // The state as a restore leaves it: only rows of the old cluster, and a fresh process.
        for id in [UInt64(1), 2, 3] {
            for operation in [KVOperation.memberRemove(id: id), .memberSet(MemberAddresses(id: id, peer: "old:\(id)", client: "old:2\(id)", clusterID: "old"))] {
                _ = try driver.node.propose(KVCommand(timestampMillis: cluster.nowMillis, operation: operation).encoded())
            }
        }
        try cluster.tick(2)
        #expect(try driver.machine.members().allSatisfy { $0.clusterID == "old" })
        driver.membersSeededTerm = nil
        try cluster.tick(3)
        #expect(driver.clientAddresses[1] == Self.addresses(1).client)
        #expect(try driver.machine.members().map { $0.clusterID } == ["test", "test", "test"], "the seed replaced the old row")
    }

    @Test func badChangesGetClearErrors() throws {
        let cluster = try Self.cluster()
        let leader = try cluster.electLeader()
        try cluster.tick(3)
        let follower = try #require(cluster.followers.first)
        #expect(Self.error(try cluster.call(["MEMBER", "ADD", "2", "h:1", "h:2"], at: leader))?.contains("already a member") == true)
        let taken = Self.addresses(2).client
        #expect(Self.error(try cluster.call(["MEMBER", "ADD", "5", "h:1", taken], at: leader))?.contains("already node 2's") == true)
        #expect(Self.error(try cluster.call(["MEMBER", "PROMOTE", "9"], at: leader))?.contains("not a learner") == true)
        #expect(Self.error(try cluster.call(["MEMBER", "REMOVE", "9"], at: leader))?.contains("not a member") == true)
        #expect(Self.error(try cluster.call(["MEMBER", "ADD", "5", "h:1", "h:2"], at: follower))?.hasPrefix("NOTLEADER") == true)
        #expect(throws: CommandError.self) { try CommandParser.parse([Array("MEMBER".utf8), Array("ADD".utf8), Array("5".utf8), Array("nohost".utf8), Array("h:2".utf8)]) }
        #expect(throws: CommandError.self) { try CommandParser.parse([Array("MEMBER".utf8), Array("REMOVE".utf8), Array("0".utf8)]) }
        // One change at a time: a second one before the first commits is refused.
        cluster.hold = { _ in true }
        let first = try cluster.send(["MEMBER", "ADD", "5", "h:1", "h:2"], to: leader)
        let second = try cluster.call(["MEMBER", "ADD", "6", "h:3", "h:4"], at: leader, ticksMax: 0)
        #expect(Self.error(second)?.contains("another membership change is pending") == true)
        cluster.hold = { _ in false }
        try cluster.tick(3)
        #expect(first.reply == .ok)
    }

    @Test func aLearnerIsPromotedOnlyOnceCaughtUp() throws {
        let cluster = try Self.cluster()
        let leader = try cluster.electLeader()
        try cluster.tick(3)
        try cluster.startJoiner(4)
        cluster.drop = { $0.to == 4 || $0.from == 4 }
        #expect(try cluster.call(["MEMBER", "ADD", "4", "h:1", "h:2"], at: leader) == .ok)
        // Adding a learner again only records its addresses again (a retry is harmless).
        #expect(try cluster.call(["MEMBER", "ADD", "4", "h:1", "h:3"], at: leader) == .ok)
        #expect(try cluster.driver(leader).clientAddresses[4] == "h:3")
        #expect(try cluster.driver(leader).status.membership.learners == [4])
        let silent = Self.error(try cluster.call(["MEMBER", "PROMOTE", "4"], at: leader))
        #expect(silent?.contains("has not caught up yet") == true, "a learner never heard from is not promoted, however short the log")
        for index in 0..<300 { _ = try cluster.send(["SET", "k\(index)", "v"], to: leader) }
        try cluster.tick(2)
        let refusal = Self.error(try cluster.call(["MEMBER", "PROMOTE", "4"], at: leader))
        #expect(refusal?.contains("has not caught up yet") == true)
        cluster.drop = { _ in false }
        try cluster.tick(20)
        #expect(try cluster.call(["MEMBER", "PROMOTE", "4"], at: leader) == .ok)
    }

    @Test func removingTheLeaderHandsLeadershipOverFirst() throws {
        let cluster = try Self.cluster()
        let leader = try cluster.electLeader()
        try cluster.tick(3)
        let reply = try cluster.call(["MEMBER", "REMOVE", "\(leader.rawValue)"], at: leader)
        #expect(Self.error(reply)?.hasPrefix("NOTLEADER") == true)
        try cluster.tick(5)
        let next = try #require(cluster.leader)
        #expect(next != leader)
        try cluster.tick(3)
        #expect(try cluster.call(["MEMBER", "REMOVE", "\(leader.rawValue)"], at: next) == .ok)
        let term = try cluster.driver(next).status.currentTerm
        try cluster.tick(30)
        #expect(try cluster.driver(next).status.currentTerm == term, "no election was forced")
        #expect(try cluster.driver(next).status.membership.voters == Set([1, 2, 3]).subtracting([leader]))
        #expect(cluster.leader == next, "the removed node does not disrupt the others")
    }
}
