import NIOPosix
import RaftCore
import Testing

@testable import KVDaemon

/// The transport follows the replicated members' addresses (`PeerTransport.updatePeers`): a node
/// unknown to cluster.conf is refused until it becomes a member, then messages flow both ways;
/// once it is removed it is refused again and delivers nothing.
@Suite(.serialized) struct PeerMembershipTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("a new member is dialled and accepted; a removed one is dropped and refused")
    func membersFollowUpdates() async throws {
        let ports = freePorts(3)
        let bootstrap = try loopbackConfig(ids: [1, 2], peerPorts: [ports[0], ports[1]])
        let joining = try loopbackConfig(ids: [1, 2, 3], peerPorts: ports)
        let node1 = try await PeerTransport.start(config: bootstrap, selfID: 1, group: group, logger: quietLogger)
        let node3 = try await PeerTransport.start(config: joining, selfID: 3, group: group, logger: quietLogger)
        let inbox1 = Inbox(node1), inbox3 = Inbox(node3)
        #expect(await eventually {
            node3.send([vote(from: 3, to: 1, term: 1)])
            return (node3.counters().peers[1]?.handshakesRefused ?? 0) >= 1
        })
        #expect(inbox1.messages.isEmpty, "not a member yet")

        node1.updatePeers(joining.nodes)
        #expect(await eventually {
            node1.send([vote(from: 1, to: 3, term: 2)])
            node3.send([vote(from: 3, to: 1, term: 2)])
            return !inbox1.messages.isEmpty && !inbox3.messages.isEmpty
        }, "messages flow both ways once node 3 is a member")

        node1.updatePeers(bootstrap.nodes)
        #expect(node1.link(3) == nil)
        let refusedBefore = node1.counters().connectionsRefused
        #expect(await eventually {
            node3.send([vote(from: 3, to: 1, term: 3)])
            return node1.counters().connectionsRefused > refusedBefore
        }, "node 3 is refused again")
        let delivered = inbox1.messages.count
        node3.send([vote(from: 3, to: 1, term: 4)])
        try await Task.sleep(for: .milliseconds(300))
        #expect(!inbox1.messages.suffix(from: min(delivered, inbox1.messages.count)).contains { $0.term == 4 })
        await node1.shutdown()
        await node3.shutdown()
    }
}
