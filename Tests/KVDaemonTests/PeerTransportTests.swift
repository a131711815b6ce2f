import Glibc
import Logging
import NIOCore
import NIOPosix
import RaftCore
import Synchronization
import Testing

@testable import KVDaemon

/// TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0, then closed).
func freePorts(_ count: Int) -> [Int] {
    var sockets: [Int32] = []
    var ports: [Int] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        ports.append(Int(UInt16(bigEndian: address.sin_port)))
        sockets.append(fd)  // keep bound until all are chosen, so the ports differ
    }
    for fd in sockets { close(fd) }
    return ports
}

/// A configuration of `ids.count` nodes on loopback with the given peer ports.
func loopbackConfig(cluster: String = "demo", ids: [UInt64], peerPorts: [Int], extra: String = "") throws -> ClusterConfig {
    // Drawn separately, the kernel may hand out a port the peer ports already use (they were
    // released when `freePorts` returned): draw until none collides.
    var clientPorts = freePorts(ids.count)
    while !Set(clientPorts).isDisjoint(with: peerPorts) { clientPorts = freePorts(ids.count) }
    var text = "cluster-id \(cluster)\n\(extra)\n"
    for (position, id) in ids.enumerated() {
        text += "node \(id) peer=127.0.0.1:\(peerPorts[position]) client=127.0.0.1:\(clientPorts[position])\n"
    }
    return try ClusterConfig.parse(text, file: "test.conf")
}

let quietLogger = Logger(label: "kvd-test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Collects everything a transport delivers.
final class Inbox: Sendable {
    private final class Box: Sendable {
        let messages = Mutex<[Message]>([])
        let unreachable = Mutex<[NodeID]>([])
        let stalled = Mutex<[NodeID]>([])
    }

    private let box = Box()
    private let task: Task<Void, Never>

    init(_ transport: PeerTransport) {
        let box = box
        task = Task {
            for await inbound in transport.inbound {
                switch inbound {
                case .messages(let batch): box.messages.withLock { $0.append(contentsOf: batch) }
                case .unreachable(let peer): box.unreachable.withLock { $0.append(peer) }
                case .stalled(let peer): box.stalled.withLock { $0.append(peer) }
                }
            }
        }
    }

    var messages: [Message] { box.messages.withLock { $0 } }
    /// Peers reported unreachable, in order.
    var unreachable: [NodeID] { box.unreachable.withLock { $0 } }
    /// Peers reported as no longer answering probes, in order.
    var stalled: [NodeID] { box.stalled.withLock { $0 } }

    deinit { task.cancel() }
}

/// A fake peer that completes the handshake and then never reads again, like a node that is
/// stuck (or a network that stopped draining): the sender's socket buffers fill up. It answers
/// in `version`: 1 (no probes, so only the bounded queue reacts) or 2 (probes go unanswered, so
/// the sender notices the stall).
final class StalledPeer: ChannelInboundHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = PeerOutboundFrame

    let clusterID: String
    let version: UInt8

    init(clusterID: String, version: UInt8) {
        self.clusterID = clusterID
        self.version = version
    }

    static func start(config: ClusterConfig, port: Int, group: any EventLoopGroup, version: UInt8 = 1) async throws
        -> any Channel
    {
        let clusterID = config.clusterID
        let frameBytesMax = config.settings.peerFrameBytesMax
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_rcvbuf), value: 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(PeerFrameDecoder(frameBytesMax: frameBytesMax)))
                    try sync.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try sync.addHandler(StalledPeer(clusterID: clusterID, version: version))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .handshake(let handshake) = unwrapInboundIn(data) else { return }
        let answer = PeerHandshake(clusterID: clusterID, sender: handshake.receiver, receiver: handshake.sender, version: version)
        context.writeAndFlush(wrapOutboundOut(.handshake(answer)), promise: nil)
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass (a generous bound, not a
/// timing assertion); returns whether it held.
func eventually(within seconds: Double = 15, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

func vote(from: NodeID, to: NodeID, term: UInt64) -> Message {
    Message(from: from, to: to, term: Term(term), body: .requestVote(RequestVote(lastLogIndex: 1, lastLogTerm: 1, isPreVote: false, isLeadershipTransfer: false)))
}

@Suite(.serialized) struct PeerTransportTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("three transports on loopback deliver every message, per sender in order, exactly to its addressee")
    func threeNodes() async throws {
        let config = try loopbackConfig(ids: [1, 2, 3], peerPorts: freePorts(3))
        var transports: [PeerTransport] = []
        for id: NodeID in [1, 2, 3] { transports.append(try await PeerTransport.start(config: config, selfID: id, group: group, logger: quietLogger)) }
        let inboxes = transports.map(Inbox.init)
        let perPair = 200
        for transport in transports {
            for to in config.nodeIDs where to != transport.selfID {
                // Several sends of several messages each, so batching and ordering are both exercised.
                for start in stride(from: 1, through: perPair, by: 10) {
                    transport.send((start..<start + 10).map { vote(from: transport.selfID, to: to, term: UInt64($0)) })
                }
            }
        }
        let complete = await eventually { inboxes.allSatisfy { $0.messages.count == 2 * perPair } }
        #expect(complete, "received: \(inboxes.map(\.messages.count))")
        for (position, inbox) in inboxes.enumerated() {
            let me = NodeID(UInt64(position + 1))
            #expect(inbox.messages.allSatisfy { $0.to == me })
            for from in config.nodeIDs where from != me {
                let terms = inbox.messages.filter { $0.from == from }.map(\.term.rawValue)
                #expect(terms == Array(1...UInt64(perPair)), "node \(me) from \(from)")
            }
        }
        let counters = transports[0].counters()
        #expect(counters.connectedPeers == 2)
        #expect(counters.messagesSent == 2 * perPair)
        #expect(counters.framesSent <= counters.messagesSent)
        #expect(counters.messagesDropped == 0)
        for transport in transports { await transport.shutdown() }
    }

    @Test("nodes of another cluster, or unknown to this one, are refused at the handshake and deliver nothing")
    func strangers() async throws {
        let ports = freePorts(3)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: [ports[0], ports[1]])
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let inbox = Inbox(node1)
        // Another cluster whose node 2 has the same address as ours: the cluster id gives it away.
        let otherCluster = try loopbackConfig(cluster: "other", ids: [1, 2], peerPorts: [ports[0], ports[2]])
        let stranger = try await PeerTransport.start(config: otherCluster, selfID: 2, group: group, logger: quietLogger)
        // Our cluster id, but an id node 1 does not know.
        let unknownConfig = try loopbackConfig(ids: [1, 9], peerPorts: [ports[0], freePorts(1)[0]])
        let unknown = try await PeerTransport.start(config: unknownConfig, selfID: 9, group: group, logger: quietLogger)
        let refused = await eventually {
            stranger.send([vote(from: 2, to: 1, term: 1)])
            unknown.send([vote(from: 9, to: 1, term: 1)])
            return (stranger.counters().peers[1]?.handshakesRefused ?? 0) >= 1
                && (unknown.counters().peers[1]?.handshakesRefused ?? 0) >= 1
        }
        #expect(refused)
        #expect(node1.counters().connectionsRefused >= 2)
        #expect(stranger.counters().connectedPeers == 0)
        #expect(inbox.messages.isEmpty)
        for transport in [node1, stranger, unknown] { await transport.shutdown() }
    }

    @Test("a restarted peer is reconnected to, and messages flow both ways again")
    func restart() async throws {
        let config = try loopbackConfig(ids: [1, 2], peerPorts: freePorts(2))
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        var node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        var inbox2 = Inbox(node2)
        node1.send([vote(from: 1, to: 2, term: 1)])
        #expect(await eventually { inbox2.messages.count == 1 })
        await node2.shutdown()
        let attemptsBefore = node1.counters().peers[2]?.connectAttempts ?? 0
        node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        inbox2 = Inbox(node2)
        let inbox1 = Inbox(node1)
        // Messages sent while the old connection is being noticed dead may be lost (Raft
        // tolerates that), so keep sending until one arrives.
        let delivered = await eventually {
            node1.send([vote(from: 1, to: 2, term: 2)])
            node2.send([vote(from: 2, to: 1, term: 2)])
            return !inbox2.messages.isEmpty && !inbox1.messages.isEmpty
        }
        #expect(delivered)
        #expect((node1.counters().peers[2]?.connectAttempts ?? 0) > attemptsBefore)
        #expect(node1.counters().reconnects >= 1)
        await node1.shutdown()
        await node2.shutdown()
    }

    @Test("a peer that is down never makes the queue exceed its message or byte limit; the oldest are dropped")
    func downPeer() async throws {
        let extra = """
            peer-queue-messages-max 100
            append-bytes-max 4096
            snapshot-chunk-bytes 4096
            key-bytes-max 16
            value-bytes-max 1000
            request-bytes-max 2048
            peer-frame-bytes-max 200000
            peer-queue-bytes-max 500000
            peer-reconnect-max-ms 50
            peer-stall-timeout-ms 600000
            """
        let config = try loopbackConfig(ids: [1, 2, 3], peerPorts: freePorts(3), extra: extra)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        for term in 1...5000 { node1.send([vote(from: 1, to: 2, term: UInt64(term))]) }
        var link = try #require(node1.counters().peers[2])
        #expect(link.queuedMessages == 100)
        #expect(link.messagesDroppedDisconnected == 4900)
        #expect(link.messagesSent == 0)
        // When node 2 comes up it gets the newest 100: the oldest were the ones dropped.
        let node2 = try await PeerTransport.start(config: config, selfID: 2, group: group, logger: quietLogger)
        let inbox2 = Inbox(node2)
        #expect(await eventually { inbox2.messages.count == 100 })
        #expect(inbox2.messages.map(\.term.rawValue) == Array(4901...5000))
        // Large messages to node 3 (down): the byte bound (500000) binds before the message bound.
        let snapshot = InstallSnapshot(
            metadata: SnapshotMetadata(lastIncludedIndex: 9, lastIncludedTerm: 1, membership: ClusterMembership(voters: [1, 2])),
            offset: 0, data: [UInt8](repeating: 7, count: 100_000), done: false, round: 1)
        for _ in 0..<50 { node1.send([Message(from: 1, to: 3, term: 1, body: .installSnapshot(snapshot))]) }
        link = try #require(node1.counters().peers[3])
        #expect(link.queuedBytes <= 500_000)
        #expect(link.queuedMessages == 4)
        #expect(link.messagesDroppedDisconnected == 46)
        await node1.shutdown()
        await node2.shutdown()
    }

    @Test("a peer that stops reading fills its socket, then the bounded queue drops; nothing piles up unbounded")
    func slowPeer() async throws {
        let ports = freePorts(2)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports, extra: "peer-queue-messages-max 50")
        let stalled = try await StalledPeer.start(config: config, port: ports[1], group: group)
        let node1 = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        #expect(await eventually { node1.counters().connectedPeers == 1 })
        let entry = Entry(term: 1, index: 1, payload: .command([UInt8](repeating: 1, count: 20_000)))
        // Bursts smaller than the queue, each followed by a pause for the queue to drain. While
        // the socket accepts data the queue empties; once the stalled reader has filled it the
        // queue must stay put and overflow. (A transport that wrote regardless of writability
        // would empty its queue every time into NIO's unbounded buffer and never drop.)
        var sent = 0
        for _ in 0..<150 {
            let burst = (0..<20).map { index in
                let append = AppendEntries(prevLogIndex: LogIndex(UInt64(sent + index)), prevLogTerm: 1, entries: [entry], leaderCommit: 0, round: 0)
                return Message(from: 1, to: 2, term: 1, body: .appendEntries(append))
            }
            node1.send(burst)
            sent += burst.count
            #expect((node1.counters().peers[2]?.queuedMessages ?? 0) <= 50)
            _ = await eventually(within: 0.05) { node1.counters().peers[2]?.queuedMessages == 0 }
            if (node1.counters().peers[2]?.messagesDropped ?? 0) > 0 { break }
        }
        let link = try #require(node1.counters().peers[2])
        #expect(link.messagesDropped > 0, "\(sent) messages of 20 kB cannot all fit in socket buffers")
        #expect(link.messagesSent + link.messagesDropped + link.queuedMessages == sent)
        #expect(link.queuedMessages <= 50)
        await node1.shutdown()
        try await stalled.close()  // its accepted child closes with the peer
    }

    @Test("a peer port already in use is a clear error naming the address")
    func portInUse() async throws {
        let ports = freePorts(2)
        let config = try loopbackConfig(ids: [1, 2], peerPorts: ports)
        let first = try await PeerTransport.start(config: config, selfID: 1, group: group, logger: quietLogger)
        let second = try PeerTransport(config: config, selfID: 1, group: group, logger: quietLogger)
        await #expect(throws: PeerTransportError.addressInUse(HostPort(host: "127.0.0.1", port: ports[0]))) {
            try await second.start()
        }
        #expect(PeerTransportError.addressInUse(HostPort(host: "127.0.0.1", port: 7101)).description == "peer address 127.0.0.1:7101 is already in use")
        await first.shutdown()
        await second.shutdown()
    }
}
