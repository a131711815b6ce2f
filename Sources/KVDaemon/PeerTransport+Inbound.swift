import Logging
import Synchronization
import NIOCore
public import RaftCore

extension PeerTransport {
    /// Why an inbound handshake is refused, or nil if it is acceptable: it must come from this
    /// cluster, from a member other than this one (as `updatePeers` last said), and be meant for
    /// this node (a mismatch means the configuration files differ between nodes).
    func handshakeProblem(_ handshake: PeerHandshake) -> String? {
        if handshake.clusterID != config.clusterID {
            return "cluster id '\(handshake.clusterID)' is not this cluster's '\(config.clusterID)'"
        }
        if handshake.sender == selfID || link(handshake.sender) == nil {
            return Self.notMemberReason(handshake.sender, clusterID: config.clusterID)
        }
        if handshake.receiver != selfID {
            return "this is node \(selfID), not node \(handshake.receiver)"
        }
        return nil
    }

    /// With peer TLS: why the certificate on `pipeline`'s connection cannot speak for the member
    /// its handshake names, or nil (docs/SECURITY.md, "TLS between peers").
    func identityProblem(_ handshake: PeerHandshake, _ pipeline: ChannelPipeline) -> String? {
        guard tls != nil, let member = link(handshake.sender) else { return nil }
        return PeerTLS.identityProblem(on: pipeline, member: member.peer.id, address: member.peer.peer)
    }

    /// The refusal a node that is not (or no longer) a member gets; it recognises it and says so.
    static func notMemberReason(_ sender: NodeID, clusterID: String) -> String {
        "node \(sender) is not a member of cluster '\(clusterID)'"
    }

    /// Sends everything received from now on straight to `consumer` (the daemon's Raft loop),
    /// called on the event-loop thread that read it, instead of into `inbound`: one thread hop
    /// less per message. The consumer must not block; it returns false when it dropped an older
    /// batch to make room (counted as `inboundBatchesDropped`).
    public func deliverInbound(to consumer: any PeerInboundConsumer) {
        route.setConsumer(consumer)
    }

    /// Hands one received batch to the Raft loop.
    func deliver(_ messages: [Message]) {
        let delivered = route.forward(.messages(messages))
        state.withLock { state in
            state.counters.messagesReceived += messages.count
            state.counters.framesReceived += 1
            if !delivered { state.counters.inboundBatchesDropped += 1 }
        }
    }

    /// Counts and logs a refused or dropped inbound connection.
    func refusedConnection(from remote: String, reason: String) {
        state.withLock { $0.counters.connectionsRefused += 1 }
        logOnce(reason, "refused peer connection from \(remote): \(reason)")
    }

    /// Logs `message` as a warning when `reason` comes up, and at debug level while it repeats
    /// within `repeatedReasonQuiet`: a refused node redials every few hundred milliseconds.
    func logOnce(_ reason: String, _ message: String) {
        let now = NIODeadline.now()
        let isNew = state.withLock { state -> Bool in
            if let last = state.loggedReasons[reason], now - last < Self.repeatedReasonQuiet { return false }
            if state.loggedReasons.count >= Self.loggedReasonsMax { state.loggedReasons.removeAll() }
            state.loggedReasons[reason] = now
            return true
        }
        if isNew {
            logger.warning("\(message)")
        } else {
            logger.debug("\(message)")
        }
    }

    /// Distinct refusal reasons remembered for `logOnce` before it starts over.
    static let loggedReasonsMax = 256
    /// How long a repeated refusal reason stays at debug level before it is a warning again.
    static let repeatedReasonQuiet = TimeAmount.seconds(60)

    /// Registers an accepted connection so `shutdown` can close it; false if the transport is
    /// stopping or already holds the most inbound connections it accepts.
    func register(_ channel: any Channel) -> Bool {
        let limit = Self.inboundConnectionsPerPeerMax * max(1, linkTable.withLock { $0.links.count })
        return state.withLock { state in
            guard !state.stopped, state.connections.count < limit else {
                state.counters.connectionsRefused += 1
                return false
            }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    /// `peer`'s connection to us passed its handshake. It replaces any older one from that node
    /// (the dialing side keeps one connection at a time, so an older one is dead even if no FIN
    /// reached us), and since the network between us evidently works, our own link to `peer`
    /// redials at once if it was waiting out a back-off.
    func inboundEstablished(from peer: NodeID, _ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let older = state.withLock { state -> [any Channel] in
            let older = (state.established[peer] ?? [:]).filter { $0.key != id }
            state.replaced.formUnion(older.keys)
            state.established[peer] = [id: channel]
            return Array(older.values)
        }
        for channel in older {
            PeerSocket.close(channel, goodbye: "replaced by a newer connection from node \(peer)")
        }
        link(peer)?.redialIfWaiting()
    }

    /// `peer`'s connection to us closed. If it ended without anyone deciding so
    /// (`peerMayBeGone`: no goodbye, no refusal, no timeout) and no newer connection replaced it,
    /// that is evidence the peer is gone: a killed process's kernel closes its sockets at once.
    func inboundEnded(from peer: NodeID, _ channel: any Channel, peerMayBeGone: Bool) {
        let id = ObjectIdentifier(channel)
        let report = state.withLock { state -> Bool in
            state.established[peer]?.removeValue(forKey: id)
            let wasReplaced = state.replaced.remove(id) != nil
            let others = !(state.established[peer]?.isEmpty ?? true)
            return peerMayBeGone && !wasReplaced && !others && !state.stopped
        }
        if report {
            logger.info("peer \(peer)'s connection to this node ended")
            route.forward(.unreachable(peer))
        }
    }

    func unregister(_ channel: any Channel) {
        _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Keeps the transport's list of inbound connections current and enforces its limit.
final class ConnectionTracker: ChannelInboundHandler {
    typealias InboundIn = Never

    private let transport: PeerTransport

    init(transport: PeerTransport) { self.transport = transport }

    func channelActive(context: ChannelHandlerContext) {
        if !transport.register(context.channel) {
            transport.logger.warning("too many peer connections; closing the one from \(context.remoteAddress.map { "\($0)" } ?? "unknown")")
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        transport.unregister(context.channel)
        context.fireChannelInactive()
    }
}

/// Where received messages and peer reports go: a consumer set by `deliverInbound(to:)`, or
/// else the `inbound` stream.
final class InboundRoute: Sendable {
    // An existential, not a closure: a closure kept in a generic container is re-wrapped in
    // reabstraction thunks on the way in and out, which showed up in profiles.
    private let consumer = Mutex<(any PeerInboundConsumer)?>(nil)
    private let stream: AsyncStream<PeerInbound>.Continuation

    init(_ stream: AsyncStream<PeerInbound>.Continuation) { self.stream = stream }

    func setConsumer(_ consumer: any PeerInboundConsumer) {
        self.consumer.withLock { $0 = consumer }
    }

    /// Passes `item` on; false if an older item was dropped to make room.
    @discardableResult
    func forward(_ item: PeerInbound) -> Bool {
        if let consumer = consumer.withLock({ $0 }) { return consumer.accept(item) }
        if case .dropped = stream.yield(item) { return false }
        return true
    }

    func finish() { stream.finish() }
}

/// Takes what the transport received, on the event-loop thread that read it (see
/// `PeerTransport.deliverInbound(to:)`).
public protocol PeerInboundConsumer: Sendable {
    /// Must not block; returns false when it dropped an older item to make room.
    func accept(_ inbound: PeerInbound) -> Bool
}

/// What the transport hands to the Raft loop.
public enum PeerInbound: Sendable {
    /// One received frame's messages.
    case messages([Message])
    /// Evidence that the peer is gone (see `PeerTransport`).
    case unreachable(NodeID)
    /// The peer stopped answering probes on an open connection (`RaftNode.peerStalled`).
    case stalled(NodeID)
}

/// What the transport has done so far, for metrics and tests.
public struct PeerTransportCounters: Hashable, Sendable {
    /// Messages written to peers.
    public var messagesSent = 0
    /// Frames written to peers.
    public var framesSent = 0
    /// Messages dropped by full send queues, for expiring, or for not fitting in a frame (each
    /// link's counters say which).
    public var messagesDropped = 0
    /// Messages addressed to nodes that are not configured.
    public var messagesUnroutable = 0
    /// Connection attempts beyond the first, over all peers.
    public var reconnects = 0
    /// Peers with an established outgoing connection now.
    public var connectedPeers = 0
    /// Messages received from peers.
    public var messagesReceived = 0
    /// Frames of messages received from peers.
    public var framesReceived = 0
    /// Received batches dropped because the Raft loop lagged behind.
    public var inboundBatchesDropped = 0
    /// Inbound connections refused (handshake, protocol error or connection limit).
    public var connectionsRefused = 0
    /// Each outgoing link's own counters.
    public var peers: [NodeID: PeerLinkCounters] = [:]
}

/// Why the transport cannot start. `description` is one line naming the address.
public enum PeerTransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Another process listens on this node's peer address.
    case addressInUse(HostPort)
    /// Binding the peer address failed for another reason.
    case bindFailed(HostPort, String)
    /// This node's id is not in the configuration.
    case unknownNode(NodeID)

    public var description: String {
        switch self {
        case .addressInUse(let address): return "peer address \(address) is already in use"
        case .bindFailed(let address, let reason): return "cannot listen for peers on \(address): \(reason)"
        case .unknownNode(let id): return "node \(id) is not in the cluster configuration"
        }
    }
}
