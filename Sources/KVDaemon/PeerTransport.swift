#if canImport(Glibc)
import Glibc
#endif
import KVStore
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
public import RaftCore
public import ServiceLifecycle
import Synchronization

/// The Raft transport between kvd nodes, on SwiftNIO (see `PeerWire` for the bytes).
///
/// - A listener on this node's `peer` address accepts connections from the other nodes. After a
///   handshake (cluster id, known sender, us as receiver) every frame's messages are yielded, as
///   one batch, on `inbound`, which the Raft loop consumes.
/// - One outgoing connection per other node (`PeerLink`) carries this node's messages to it, with
///   reconnection, capped exponential backoff and jitter, and a bounded queue that drops the
///   oldest messages when full (see `PeerLink` for why oldest).
/// - `send` never blocks: it encodes, queues and returns; queued messages go out batched, many
///   per frame and many frames per flush.
/// - Evidence that a peer is gone is yielded on `inbound` too, in order with its messages: a
///   connection between us ended without a goodbye (a killed process's kernel closes or resets
///   its sockets; closes a live node decides on — stalls, silence, refusals, replacement — send a
///   goodbye first and are not evidence), or nobody listens at its address. The Raft loop hands it to
///   `RaftNode.peerUnreachable`, which starts a fast failover if that peer was the leader.
///
/// Lifecycle: `start` binds the listener (a port in use is a `PeerTransportError` naming the
/// address) and starts dialing; as a `Service`, `run` waits for graceful shutdown and then calls
/// `shutdown`, which closes every connection (inbound ones too: closing only the listener would
/// wait for them) and finishes `inbound`.
public final class PeerTransport: Service, Sendable {
    /// The cluster configuration (the same file on every node).
    public let config: ClusterConfig
    /// This node.
    public let selfID: NodeID
    let settings: ClusterSettings
    let logger: Logger
    /// The cluster secret peers must prove in the handshake (nil: none; docs/SECURITY.md).
    let secret: PeerSecret?
    /// Mutual TLS on every peer connection, both ways (nil: plain TCP; docs/SECURITY.md).
    let tls: PeerTLS?
    private let group: any EventLoopGroup
    /// One outgoing link per other member. Starts as `config`'s nodes and follows the replicated
    /// members' addresses (`updatePeers`): a new member is dialled, a removed one dropped.
    let linkTable = Mutex(LinkTable())
    let route: InboundRoute
    let state = Mutex(ListenerState())

    /// Batches of messages from other nodes, one batch per received frame, in arrival order per
    /// peer, and reports of unreachable peers. Buffers at most `peer-queue-messages-max` items:
    /// if the consumer lags further the oldest are dropped (counted in `inboundBatchesDropped`),
    /// which Raft tolerates.
    public let inbound: AsyncStream<PeerInbound>

    /// Most simultaneous inbound connections per other node; a node has one at a time normally,
    /// more only briefly while a dead connection is noticed. Beyond it, connections are refused.
    public static let inboundConnectionsPerPeerMax = 4

    struct LinkTable {
        var links: [NodeID: PeerLink] = [:]
        /// Links made after `start` dial at once; before it, `start` dials them all.
        var started = false
        var stopped = false
    }

    struct ListenerState {
        var server: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        /// Inbound connections whose handshake succeeded, by the node that dialed them.
        var established: [NodeID: [ObjectIdentifier: any Channel]] = [:]
        /// Inbound connections closed because a newer one from the same node replaced them.
        var replaced: Set<ObjectIdentifier> = []
        var stopped = false
        var counters = PeerTransportCounters()
        /// Refusal reasons logged as warnings, and when (`logOnce`).
        var loggedReasons: [String: NIODeadline] = [:]
    }

    /// A transport for node `selfID` of `config`; nothing happens on the network until `start`.
    public init(
        config: ClusterConfig, selfID: NodeID, group: any EventLoopGroup, logger: Logger, secret: PeerSecret? = nil,
        tls: PeerTLS? = nil
    ) throws(PeerTransportError) {
        guard config.node(selfID) != nil else { throw .unknownNode(selfID) }
        self.secret = secret
        self.tls = tls
        self.config = config
        self.selfID = selfID
        self.settings = config.settings
        self.group = group
        self.logger = logger
        let (inbound, continuation) = AsyncStream.makeStream(
            of: PeerInbound.self, bufferingPolicy: .bufferingNewest(config.settings.peerQueueMessagesMax))
        self.inbound = inbound
        let events = InboundRoute(continuation)
        self.route = events
        linkTable.withLock { table in
            for node in config.nodes where node.id != selfID { table.links[node.id] = makeLink(to: node) }
        }
    }

    func makeLink(to node: ClusterNode) -> PeerLink {
        let events = route
        return PeerLink(
            peer: node, selfID: selfID, clusterID: config.clusterID, settings: config.settings,
            eventLoop: group.next(), logger: logger, secret: secret, tls: tls, onUnreachable: { events.forward(.unreachable($0)) },
            onStalled: { events.forward(.stalled($0)) })
    }

    /// The link to `peer`, if it is a member.
    func link(_ peer: NodeID) -> PeerLink? { linkTable.withLock { $0.links[peer] } }

    /// Every member this node dials.
    var links: [NodeID: PeerLink] { linkTable.withLock { $0.links } }

    /// Creates a transport and starts it: the convenient form for the daemon.
    public static func start(
        config: ClusterConfig, selfID: NodeID, group: any EventLoopGroup, logger: Logger, secret: PeerSecret? = nil,
        tls: PeerTLS? = nil
    ) async throws(PeerTransportError) -> PeerTransport {
        let transport = try PeerTransport(
            config: config, selfID: selfID, group: group, logger: logger, secret: secret, tls: tls)
        try await transport.start()
        return transport
    }

    /// Binds the listener on this node's peer address and starts dialing every other node.
    public func start() async throws(PeerTransportError) {
        guard let me = config.node(selfID) else { throw .unknownNode(selfID) }
        let address = me.peer
        let frameBytesMax = settings.peerFrameBytesMax
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(PeerSocket.userTimeout, value: PeerSocket.userTimeoutValue(settings))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls.server)) }
                    let activity = ReceiveActivity()
                    try sync.addHandler(activity)
                    try sync.addHandler(ByteToMessageHandler(PeerFrameDecoder(frameBytesMax: frameBytesMax)))
                    try sync.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try sync.addHandler(PeerInboundHandler(transport: self, activity: activity))
                    try sync.addHandler(ConnectionTracker(transport: self))
                }
            }
        let server: any Channel
        do {
            server = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw .addressInUse(address)
        } catch {
            throw .bindFailed(address, socketErrorText(error))
        }
        let stopped = state.withLock { state -> Bool in
            if !state.stopped { state.server = server }
            return state.stopped
        }
        if stopped {
            try? await server.close()
            return
        }
        logger.info("listening for peers on \(address)")
        let links = linkTable.withLock { table -> [PeerLink] in
            table.started = true
            return Array(table.links.values)
        }
        for link in links { link.eventLoop.execute { link.connect() } }
    }

    /// The address the listener is bound to, once started.
    public var localAddress: SocketAddress? { state.withLock { $0.server?.localAddress } }

    /// Queues `messages` for their destinations (`Message.to`) and returns at once; callable from
    /// any thread, in particular from the Raft loop. Messages to unknown nodes are counted and
    /// dropped.
    public func send(_ messages: [Message]) {
        var byPeer: [NodeID: [ByteBuffer]] = [:]
        var unroutable = 0
        let links = self.links
        for message in messages {
            guard links[message.to] != nil else {
                unroutable += 1
                continue
            }
            var writer = BinaryWriter(capacity: 64 + message.wireSizeHint)
            PeerWire.encode(message, into: &writer)
            byPeer[message.to, default: []].append(ByteBuffer(bytes: writer.bytes))
        }
        if unroutable > 0 {
            state.withLock { $0.counters.messagesUnroutable += unroutable }
            logger.debug("dropped \(unroutable) message(s) addressed to nodes not in the configuration")
        }
        for (peer, buffers) in byPeer { links[peer]?.enqueue(buffers) }
    }

    /// A snapshot of the transport's counters, for metrics and tests.
    public func counters() -> PeerTransportCounters {
        var counters = state.withLock { $0.counters }
        for (id, link) in links {
            let peer = link.counters
            counters.peers[id] = peer
            counters.messagesSent += peer.messagesSent
            counters.framesSent += peer.framesSent
            counters.messagesDropped += peer.messagesDropped + peer.messagesDroppedDisconnected + peer.messagesOversized
                + peer.messagesExpired
            counters.reconnects += max(0, peer.connectAttempts - 1)
            counters.connectedPeers += peer.connected ? 1 : 0
        }
        return counters
    }

    /// `Service`: runs until graceful shutdown (SIGTERM) or cancellation, then shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Closes the listener and every connection, stops reconnecting and finishes `inbound`.
    /// Safe to call more than once.
    public func shutdown() async {
        let channels = state.withLock { state -> [any Channel] in
            state.stopped = true
            defer {
                state.server = nil
                state.connections = [:]
                state.established = [:]
            }
            return [state.server].compactMap { $0 } + Array(state.connections.values)
        }
        for channel in channels { try? await channel.close() }
        let links = linkTable.withLock { table -> [PeerLink] in
            table.stopped = true
            return Array(table.links.values)
        }
        for link in links { await link.stop() }
        route.finish()
    }
}
