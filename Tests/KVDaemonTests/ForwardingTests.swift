import KVStore
import RaftCore
import Testing

@testable import KVDaemon

/// Any node serves every command (docs/PROTOCOL.md, "Followers"): a follower forwards writes to
/// its leader and answers them from its own apply, and serves reads at a read index it gets from
/// the leader (thesis §6.4).
@Suite struct ForwardingTests {
    static func code(_ reply: Reply?) -> String? {
        guard case .error(let line)? = reply else { return nil }
        return line.split(separator: " ").first.map(String.init)
    }

    @Test func followerWritesAreForwardedAndAnsweredFromTheFollowersApply() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        #expect(try cluster.call(["SET", "k", "v"], at: follower) == .ok)
        #expect(try cluster.call(["INCR", "n"], at: follower) == .integer(1))
        #expect(try cluster.call(["INCR", "n"], at: follower) == .integer(2))
        #expect(try cluster.driver(leader).machine.get(Array("k".utf8))?.value == Array("v".utf8))
        let driver = try cluster.driver(follower)
        #expect(driver.forwarding.writes == 3)
        #expect(driver.forwarding.writesAnswered == 3)
        #expect(driver.requests.forwardCount == 0)
        #expect(try cluster.driver(leader).forwarding.writesReceived == 3)
        // Applied once: the leader's log holds each forwarded command once.
        #expect(try cluster.call(["GET", "n"], at: leader) == .bulk(Array("2".utf8)))
    }

    /// Thesis §6.4 on a follower: a read that starts after a write was acknowledged (by the
    /// leader) sees it, even when the follower had not received the entry yet: it waits for its
    /// own state machine to reach the leader's read index.
    @Test func followerReadSeesAWriteAcknowledgedByTheLeader() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let lagging = try #require(cluster.followers.last)
        cluster.hold = { message in
            if message.from == leader, message.to == lagging, case .appendEntries = message.body { return true }
            return false
        }
        #expect(try cluster.call(["SET", "k", "new"], at: leader) == .ok)
        #expect(try cluster.driver(lagging).machine.get(Array("k".utf8)) == nil, "the follower has not applied it")
        let read = try cluster.send(["GET", "k"], to: lagging)
        try cluster.tick(3)
        #expect(read.reply == nil, "served before the follower reached the read index")
        cluster.hold = { _ in false }
        try cluster.tick(3)
        #expect(read.reply == .bulk(Array("new".utf8)))
        #expect(try cluster.driver(lagging).forwarding.reads == 1)
    }

    /// `CLIENT REDIRECT ON` (and `forward-to-leader 0`) give back the old redirects.
    @Test func redirectsOnRequest() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        let redirect = CommandRouting(redirects: true)
        let expected = Reply.error("NOTLEADER \(leader) node\(leader):6379")
        #expect(try cluster.call(["SET", "k", "v"], at: follower, routing: redirect) == expected)
        #expect(try cluster.call(["GET", "k"], at: follower, routing: redirect) == expected)
        #expect(try cluster.driver(follower).requests.count == 0)

        let off = try DriverCluster { $0.forwardsToLeader = false }
        let offLeader = try off.electLeader()
        let offFollower = try #require(off.followers.first)
        #expect(Self.code(try off.call(["SET", "k", "v"], at: offFollower)) == "NOTLEADER")
        #expect(Self.code(try off.call(["GET", "k"], at: offFollower)) == "NOTLEADER")
        #expect(try off.call(["SET", "k", "v"], at: offLeader) == .ok)
    }

    /// A follower that knows no leader sends nothing: the error is definite.
    @Test func noLeaderKnownIsDefinite() throws {
        let cluster = try DriverCluster()
        #expect(try cluster.call(["SET", "k", "v"], at: 1, ticksMax: 0) == .error("NOTLEADER unknown unknown"))
        #expect(try cluster.call(["GET", "k"], at: 1, ticksMax: 0) == .error("NOTLEADER unknown unknown"))
    }

    /// A forward lost on the way is never re-sent: its client gets the indeterminate `-TIMEOUT`
    /// at its deadline, and nothing is applied.
    @Test func lostForwardTimesOutAndIsNotApplied() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        cluster.drop = { message in
            if case .forwardedProposal = message.body { return true }
            return false
        }
        let box = try cluster.send(["SET", "k", "v"], to: follower)
        try cluster.tick(Int(cluster.settings.requestTimeoutMillis / cluster.settings.heartbeatMillis) + 2)
        #expect(Self.code(box.reply) == "TIMEOUT")
        #expect(box.count == 1)
        #expect(try cluster.driver(leader).machine.get(Array("k".utf8)) == nil)
        #expect(try cluster.driver(follower).requests.forwardCount == 0)
    }

    /// A leader that refuses a forward (here: it is handing leadership over, thesis §3.10) says
    /// so, and the follower's client gets the definite `-NOTLEADER` naming the target at once.
    @Test func refusedForwardIsDefinite() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let (follower, target) = (cluster.followers[0], cluster.followers[1])
        // The target hears nothing, so the transfer stays under way.
        cluster.drop = { $0.to == target }
        #expect(try cluster.call(["LEADER", "TRANSFER", "\(target)"], at: leader) == .ok)
        let box = try cluster.send(["SET", "k", "v"], to: follower)
        try cluster.deliverAll()
        #expect(box.reply == .error("NOTLEADER \(target) node\(target):6379"))
        #expect(try cluster.driver(follower).requests.forwardCount == 0)
        #expect(try cluster.driver(leader).machine.get(Array("k".utf8)) == nil)
    }

    /// `forwarded-writes-max` bounds the forwards a follower keeps waiting; more are refused at
    /// once, definitely.
    @Test func forwardsBeyondTheLimitAreRefused() throws {
        let cluster = try DriverCluster { $0.forwardedWritesMax = 2 }
        try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        cluster.hold = { message in
            if case .forwardedProposal = message.body { return true }
            return false
        }
        let first = try cluster.send(["SET", "a", "1"], to: follower)
        let second = try cluster.send(["SET", "b", "2"], to: follower)
        let third = try cluster.send(["SET", "c", "3"], to: follower)
        #expect(first.reply == nil && second.reply == nil)
        guard case .error(let line)? = third.reply else {
            Issue.record("the third forward was not refused: \(String(describing: third.reply))")
            return
        }
        #expect(line.hasPrefix("ERR server busy"))
        cluster.hold = { _ in false }
        try cluster.tick(3)
        #expect(first.reply == .ok && second.reply == .ok)
    }

    /// Thesis §6.3 through a follower: a session-stamped write forwarded twice (a client retry)
    /// applies once; the retry gets the kept reply.
    @Test func sessionWritesKeepExactlyOnceThroughAFollower() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        guard case .integer(let client) = try cluster.call(["SESSION", "REGISTER"], at: follower) else {
            Issue.record("SESSION REGISTER through a follower failed")
            return
        }
        let write = ["SESSION", "\(client)", "1", "INCRBY", "n", "5"]
        #expect(try cluster.call(write, at: follower) == .integer(5))
        #expect(try cluster.call(write, at: follower) == .integer(5), "the retry gets the kept reply")
        #expect(try cluster.call(write, at: leader) == .integer(5))
        #expect(try cluster.call(["GET", "n"], at: follower) == .bulk(Array("5".utf8)))
    }

    /// Lock waits work through a follower: the grant event applies on every node.
    @Test func lockWaitThroughAFollower() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        guard case .integer(let first) = try cluster.call(["LEASE", "GRANT", "60000"], at: leader),
            case .integer(let second) = try cluster.call(["LEASE", "GRANT", "60000"], at: follower)
        else {
            Issue.record("lease grants failed")
            return
        }
        guard case .integer(let token) = try cluster.call(["LOCK", "l", "LEASE", "\(first)"], at: leader) else {
            Issue.record("first lock failed")
            return
        }
        let waiting = try cluster.send(["LOCK", "l", "LEASE", "\(second)", "WAIT", "10000"], to: follower)
        try cluster.tick(3)
        #expect(waiting.reply == nil, "queued behind the holder")
        #expect(try cluster.call(["UNLOCK", "l", "\(token)"], at: leader) == .ok)
        try cluster.tick(3)
        guard case .integer(let granted)? = waiting.reply else {
            Issue.record("the waiter on the follower was not granted: \(String(describing: waiting.reply))")
            return
        }
        #expect(granted > token)
    }

    /// LEADER TRANSFER stays leader-only.
    @Test func leaderTransferIsNotForwarded() throws {
        let cluster = try DriverCluster()
        try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        #expect(Self.code(try cluster.call(["LEADER", "TRANSFER", "\(follower)"], at: follower)) == "NOTLEADER")
    }

    /// A leader restamps a forwarded command with its own clock, keeping the origin tag.
    @Test func leaderStampsItsClockOnForwards() throws {
        let cluster = try DriverCluster()
        let leader = try cluster.electLeader()
        let follower = try #require(cluster.followers.first)
        let command = KVCommand(
            timestampMillis: 1, operation: .increment(key: Array("n".utf8), delta: 1, fence: nil),
            origin: ProposalOrigin(nodeID: follower.rawValue, sequence: 9))
        let message = Message(
            from: follower, to: leader, term: try cluster.driver(leader).status.currentTerm,
            body: .forwardedProposal(ForwardedProposal(id: 9, command: command.encoded())))
        let restamped = try #require(try cluster.driver(leader).restampForwarded(message))
        guard case .forwardedProposal(let proposal) = restamped.body else {
            Issue.record("not a forwarded proposal any more")
            return
        }
        let decoded = try KVCommand(decoding: proposal.command)
        #expect(decoded.timestampMillis == cluster.nowMillis)
        #expect(decoded.origin == command.origin)
    }
}
