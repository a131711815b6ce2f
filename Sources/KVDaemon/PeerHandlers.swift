import Logging
import NIOCore
import RaftCore

/// The handler at the end of a connection this node dialed: sends our handshake, checks the
/// answer, then only watches the connection (messages are written by `PeerLink.drain`).
final class PeerOutboundHandler: ChannelInboundHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = PeerOutboundFrame

    private let link: PeerLink
    private let attempt: Int
    private let handshake: PeerHandshake
    private let timeout: TimeAmount
    private var established = false
    private var handshakeTimer: Scheduled<Void>?

    init(link: PeerLink, attempt: Int, handshake: PeerHandshake, timeout: TimeAmount) {
        self.link = link
        self.attempt = attempt
        self.handshake = handshake
        self.timeout = timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.handshake(handshake)), promise: nil)
        let channel = context.channel
        let link = link
        handshakeTimer = context.eventLoop.scheduleTask(in: timeout) {
            link.problem("no handshake answer within peer-connect-timeout-ms")
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .handshake(let answer) where !established:
            handshakeTimer?.cancel()
            let expected = PeerHandshake(clusterID: handshake.clusterID, sender: handshake.receiver, receiver: handshake.sender)
            guard answer == expected else {
                link.problem(
                    "\(link.peer.peer) answered as cluster '\(answer.clusterID)' node \(answer.sender) (for node \(answer.receiver)); expected cluster '\(expected.clusterID)' node \(expected.sender)")
                context.close(promise: nil)
                return
            }
            established = true
            link.established(context.channel, attempt: attempt)
        case .refusal(let reason):
            link.refused(reason)
            context.close(promise: nil)
        case .handshake, .messages:
            // Raft messages travel on the connection their sender dialed, never back on ours.
            link.problem("unexpected frame from \(link.peer.peer); closing")
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.scheduleDrain() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        link.attemptEnded(attempt)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        link.problem("connection error: \(error)")
        context.close(promise: nil)
    }
}

/// The handler of a connection another node dialed: checks its handshake (cluster id, a known
/// sender, ourselves as receiver), answers, then hands every batch of messages to the transport.
/// Anything unexpected closes the connection; the dialing node will reconnect.
final class PeerInboundHandler: ChannelInboundHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = PeerOutboundFrame

    private enum State {
        case awaitingHandshake(Scheduled<Void>?)
        case established(NodeID)
        case closing
    }

    private let transport: PeerTransport
    private var state = State.awaitingHandshake(nil)
    private var remote = "unknown"

    init(transport: PeerTransport) {
        self.transport = transport
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress.map { "\($0)" } ?? "unknown"
        let channel = context.channel
        let transport = transport
        let remote = remote
        let timer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(transport.settings.peerConnectTimeoutMillis))) {
            transport.logger.warning("peer connection from \(remote) sent no handshake in time; closing")
            channel.close(promise: nil)
        }
        state = .awaitingHandshake(timer)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch (state, frame) {
        case (.awaitingHandshake(let timer), .handshake(let handshake)):
            timer?.cancel()
            if let problem = transport.handshakeProblem(handshake) {
                refuse(context: context, problem)
                return
            }
            state = .established(handshake.sender)
            let answer = PeerHandshake(
                clusterID: transport.config.clusterID, sender: transport.selfID, receiver: handshake.sender)
            context.writeAndFlush(wrapOutboundOut(.handshake(answer)), promise: nil)
            transport.logger.info("peer \(handshake.sender) connected from \(remote)")
        case (.established(let peer), .messages(let messages)):
            if let stray = messages.first(where: { $0.from != peer || $0.to != transport.selfID }) {
                refuse(context: context, "message from \(stray.from) to \(stray.to) on node \(peer)'s connection")
                return
            }
            transport.deliver(messages)
        case (_, .refusal(let reason)):
            transport.logger.warning("peer connection from \(remote) closed by the other side: \(reason)")
            state = .closing
            context.close(promise: nil)
        case (.closing, _):
            return
        case (.awaitingHandshake, .messages):
            refuse(context: context, "expected a handshake first")
        case (.established, .handshake):
            refuse(context: context, "a second handshake on one connection")
        }
    }

    /// Tells the other side why (so it can log it), then closes.
    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        if case .awaitingHandshake(let timer) = state { timer?.cancel() }
        guard case .closing = state else {
            state = .closing
            transport.refusedConnection(from: remote, reason: reason)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.refusal(reason))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .awaitingHandshake(let timer) = state { timer?.cancel() }
        state = .closing
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A frame that does not decode (garbage, oversized, truncated, another version) ends
        // this connection only; the node and its other connections are unaffected.
        refuse(context: context, "\(error)")
    }
}
