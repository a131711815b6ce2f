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
    /// The connection ends by a live node's decision (a goodbye, a protocol error, a timeout),
    /// not by its process vanishing: no evidence that the peer is gone.
    private var deliberate = false

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
            // The answer carries the version both sides speak: ours or lower.
            guard answer.clusterID == handshake.clusterID, answer.sender == handshake.receiver,
                answer.receiver == handshake.sender, answer.version <= handshake.version
            else {
                link.problem(
                    "\(link.peer.peer) answered as cluster '\(answer.clusterID)' node \(answer.sender) (for node \(answer.receiver)); expected cluster '\(handshake.clusterID)' node \(handshake.receiver)")
                context.close(promise: nil)
                return
            }
            if let problem = identityProblem(context: context) ?? proveSecret(answer, context: context) {
                deliberate = true
                link.problem(problem)
                PeerSocket.close(context.channel, goodbye: problem)
                return
            }
            established = true
            link.established(context.channel, attempt: attempt, version: answer.version)
        case .probeAnswer(let sequence) where established:
            link.probeAnswered(sequence, on: context.channel)
        case .refusal(let reason):
            deliberate = true
            if established {
                link.problem("closed by the other side: \(reason)")
            } else {
                link.refused(reason)
            }
            context.close(promise: nil)
        case .handshake, .messages, .probe, .probeAnswer, .proof:
            // Raft messages travel on the connection their sender dialed, never back on ours.
            deliberate = true
            link.problem("unexpected frame from \(link.peer.peer); closing")
            context.close(promise: nil)
        }
    }

    /// With peer TLS: why the listening side's certificate does not name the member this link
    /// dials, or nil.
    private func identityProblem(context: ChannelHandlerContext) -> String? {
        guard link.tls != nil else { return nil }
        return PeerTLS.identityProblem(on: context.pipeline, member: link.peer.id, address: link.peer.peer)
    }

    /// With a cluster secret: checks the listening side's proof and sends ours. Nil when the
    /// connection may go on; otherwise why not (both sides then log it).
    private func proveSecret(_ answer: PeerHandshake, context: ChannelHandlerContext) -> String? {
        let peer = handshake.receiver
        guard let secret = link.secret else {
            guard answer.proof == nil else {
                return "node \(peer) requires a cluster secret (peer-secret-file) and node \(handshake.sender) has none"
            }
            return nil
        }
        guard answer.version >= PeerWire.secretVersion, let listenerNonce = answer.nonce, let dialerNonce = handshake.nonce,
            answer.proof != nil
        else {
            return "node \(handshake.sender) requires a cluster secret (peer-secret-file) and node \(peer) proved none (protocol version \(answer.version))"
        }
        let expected = secret.listenerProof(
            cluster: handshake.clusterID, listener: peer, dialer: handshake.sender, dialerNonce: dialerNonce,
            listenerNonce: listenerNonce)
        guard PeerSecret.matches(answer.proof, expected) else {
            return "node \(peer) proved another cluster secret than node \(handshake.sender)'s (peer-secret-file differs)"
        }
        let proof = secret.dialerProof(
            cluster: handshake.clusterID, dialer: handshake.sender, listener: peer, dialerNonce: dialerNonce,
            listenerNonce: listenerNonce)
        context.writeAndFlush(wrapOutboundOut(.proof(proof)), promise: nil)
        return nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link.scheduleDrain() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        link.attemptEnded(attempt, peerMayBeGone: !deliberate)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset is what a vanished process leaves; anything else (a frame that does not
        // decode, TCP_USER_TIMEOUT) is a judgment about a peer that may well be alive.
        if !PeerSocket.isAbruptEnd(error) { deliberate = true }
        link.problem("connection error: \(peerConnectionErrorText(error))")
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
        /// Our answer carried our proof of the cluster secret; the dialing node's must come next.
        case awaitingProof(PeerHandshake, listenerNonce: [UInt8], version: UInt8, Scheduled<Void>?)
        case established(NodeID, version: UInt8)
        case closing
    }

    private let transport: PeerTransport
    private var state = State.awaitingHandshake(nil)
    private var remote = "unknown"
    /// When bytes last arrived; on a probed connection, silence for `peer-stall-timeout-ms`
    /// means the dialing side is gone or stuck.
    private let activity: ReceiveActivity
    private var silenceWatch: RepeatedTask?
    /// The node whose connection this is, once its handshake was accepted.
    private var establishedPeer: NodeID?
    /// The connection ends by a live node's decision (a goodbye, a refusal, silence), not by
    /// its dialer's process vanishing: no evidence that the peer is gone.
    private var deliberate = false

    init(transport: PeerTransport, activity: ReceiveActivity) {
        self.transport = transport
        self.activity = activity
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress.map { "\($0)" } ?? "unknown"
        state = .awaitingHandshake(closeUnlessSent("a handshake", context: context))
        context.fireChannelActive()
    }

    /// Closes the connection unless the dialing node sends `what` within peer-connect-timeout-ms.
    private func closeUnlessSent(_ what: String, context: ChannelHandlerContext) -> Scheduled<Void> {
        let channel = context.channel
        let transport = transport
        let remote = remote
        return context.eventLoop.scheduleTask(in: .milliseconds(Int64(transport.settings.peerConnectTimeoutMillis))) {
            transport.logger.warning("peer connection from \(remote) sent no \(what) in time; closing")
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch (state, frame) {
        case (.awaitingHandshake(let timer), .handshake(let handshake)):
            timer?.cancel()
            if let problem = transport.handshakeProblem(handshake) ?? transport.identityProblem(handshake, context.pipeline) {
                refuse(context: context, problem)
                return
            }
            let version = min(handshake.version, PeerWire.version)
            var answer = PeerHandshake(
                clusterID: transport.config.clusterID, sender: transport.selfID, receiver: handshake.sender,
                version: version, nonce: PeerSecret.nonce())
            guard let secret = transport.secret else {
                context.writeAndFlush(wrapOutboundOut(.handshake(answer)), promise: nil)
                establish(context: context, peer: handshake.sender, version: version)
                return
            }
            guard version >= PeerWire.secretVersion, let dialerNonce = handshake.nonce, let listenerNonce = answer.nonce else {
                refuse(context: context, "node \(transport.selfID) requires a cluster secret (peer-secret-file) and node \(handshake.sender) speaks protocol version \(version), which cannot prove one")
                return
            }
            answer.proof = secret.listenerProof(
                cluster: transport.config.clusterID, listener: transport.selfID, dialer: handshake.sender,
                dialerNonce: dialerNonce, listenerNonce: listenerNonce)
            context.writeAndFlush(wrapOutboundOut(.handshake(answer)), promise: nil)
            let proofTimer = closeUnlessSent("proof of the cluster secret", context: context)
            state = .awaitingProof(handshake, listenerNonce: listenerNonce, version: version, proofTimer)
        case (.awaitingProof(let handshake, let listenerNonce, let version, let timer), .proof(let proof)):
            timer?.cancel()
            guard let secret = transport.secret, let dialerNonce = handshake.nonce else { return }
            let expected = secret.dialerProof(
                cluster: transport.config.clusterID, dialer: handshake.sender, listener: transport.selfID,
                dialerNonce: dialerNonce, listenerNonce: listenerNonce)
            guard PeerSecret.matches(proof, expected) else {
                refuse(context: context, "node \(handshake.sender) proved another cluster secret than node \(transport.selfID)'s (peer-secret-file differs)")
                return
            }
            establish(context: context, peer: handshake.sender, version: version)
        case (.established(let peer, _), .messages(let messages)):
            if let stray = messages.first(where: { $0.from != peer || $0.to != transport.selfID }) {
                refuse(context: context, "message from \(stray.from) to \(stray.to) on node \(peer)'s connection")
                return
            }
            transport.deliver(messages)
        case (.established(_, let version), .probe(let sequence)) where version >= PeerWire.probeVersion:
            context.writeAndFlush(wrapOutboundOut(.probeAnswer(sequence)), promise: nil)
        case (_, .refusal(let reason)):
            transport.logOnce(reason, "peer connection from \(remote) closed by the other side: \(reason)")
            deliberate = true
            state = .closing
            context.close(promise: nil)
        case (.closing, _):
            return
        case (.awaitingHandshake, .messages), (.awaitingHandshake, .probe), (.awaitingHandshake, .probeAnswer),
            (.awaitingHandshake, .proof):
            refuse(context: context, "expected a handshake first")
        case (.awaitingProof, _):
            refuse(context: context, "expected a proof of the cluster secret after the handshake")
        case (.established, .proof):
            refuse(context: context, "a proof on an established connection")
        case (.established, .handshake):
            refuse(context: context, "a second handshake on one connection")
        case (.established, .probe):
            refuse(context: context, "a probe on a protocol version 1 connection")
        case (.established, .probeAnswer):
            refuse(context: context, "a probe answer on a connection this node did not dial")
        }
    }

    /// The dialing node is accepted: its messages go to the transport from now on.
    private func establish(context: ChannelHandlerContext, peer: NodeID, version: UInt8) {
        state = .established(peer, version: version)
        let secured = (transport.secret == nil ? "" : ", cluster secret proved") + (transport.tls == nil ? "" : ", mutual TLS")
        transport.logger.info("peer \(peer) connected from \(remote) (protocol version \(version)\(secured))")
        establishedPeer = peer
        transport.inboundEstablished(from: peer, context.channel)
        if version >= PeerWire.probeVersion { watchForSilence(context: context, peer: peer) }
    }

    /// Closes the connection if the dialing side sends nothing, not even a probe, for
    /// `peer-stall-timeout-ms`: it is gone or stuck, and its next connection replaces this one.
    private func watchForSilence(context: ChannelHandlerContext, peer: NodeID) {
        let interval = TimeAmount.milliseconds(Int64(transport.settings.heartbeatMillis))
        let limit = TimeAmount.milliseconds(Int64(transport.settings.peerStallTimeoutMillis))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let channel = context.channel
        silenceWatch = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            let silence = NIODeadline.now() - handler.value.activity.lastReceived
            guard silence >= limit else { return }
            task.cancel()
            let reason = "nothing received for \(silence.nanoseconds / 1_000_000) ms (peer-stall-timeout-ms)"
            handler.value.transport.logger.warning("peer \(peer): \(reason) on its connection from \(handler.value.remote); closing it")
            handler.value.deliberate = true
            handler.value.state = .closing
            PeerSocket.close(channel, goodbye: reason)
        }
    }

    /// Tells the other side why (so it can log it), then closes.
    private func refuse(context: ChannelHandlerContext, _ reason: String) {
        deliberate = true
        if case .awaitingHandshake(let timer) = state { timer?.cancel() }
        if case .awaitingProof(_, _, _, let timer) = state { timer?.cancel() }
        guard case .closing = state else {
            state = .closing
            transport.refusedConnection(from: remote, reason: reason)
            PeerSocket.close(context.channel, goodbye: reason)
            return
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        silenceWatch?.cancel()
        silenceWatch = nil
        if case .awaitingHandshake(let timer) = state { timer?.cancel() }
        if case .awaitingProof(_, _, _, let timer) = state { timer?.cancel() }
        if let peer = establishedPeer { transport.inboundEnded(from: peer, context.channel, peerMayBeGone: !deliberate) }
        state = .closing
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset is what a vanished process leaves: just close (and report it).
        if PeerSocket.isAbruptEnd(error) {
            context.close(promise: nil)
            return
        }
        // A frame that does not decode (garbage, oversized, truncated, another version) ends
        // this connection only; the node and its other connections are unaffected.
        refuse(context: context, peerConnectionErrorText(error))
    }
}

/// Stamps when bytes last arrived on a connection, before they are decoded: silence is judged on
/// bytes, so a large frame that takes a while to arrive is not mistaken for a silent peer.
final class ReceiveActivity: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private(set) var lastReceived = NIODeadline.now()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastReceived = .now()
        context.fireChannelRead(data)
    }
}
