import Logging
import NIOCore
import NIOPosix
import NIOSSL
import RaftCore

extension PeerLink {
    /// Dials the peer (again). Each attempt gets a number; callbacks of older attempts are ignored.
    func connect() {
        let attempt = state.withLock { state -> Int? in
            guard !state.stopped else { return nil }
            state.attempt += 1
            state.reconnect = nil
            state.counters.connectAttempts += 1
            return state.attempt
        }
        guard let attempt else { return }
        let frameBytesMax = settings.peerFrameBytesMax
        let handshake = PeerHandshake(clusterID: clusterID, sender: selfID, receiver: peer.id, nonce: PeerSecret.nonce())
        let timeout = TimeAmount.milliseconds(Int64(settings.peerConnectTimeoutMillis))
        let tls = self.tls
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(PeerSocket.userTimeout, value: PeerSocket.userTimeoutValue(settings))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    // No server name: the certificate is checked against the membership once the
                    // peer handshake names the node (PeerTLS.identityProblem).
                    if let tls { try sync.addHandler(try NIOSSLClientHandler(context: tls.client, serverHostname: nil)) }
                    try sync.addHandler(ByteToMessageHandler(PeerFrameDecoder(frameBytesMax: frameBytesMax)))
                    try sync.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try sync.addHandler(
                        PeerOutboundHandler(link: self, attempt: attempt, handshake: handshake, timeout: timeout))
                }
            }
            .connect(host: peer.peer.host, port: peer.peer.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let stopped = self.state.withLock { state -> Bool in
                        if state.attempt == attempt { state.pendingChannel = channel }
                        return state.stopped
                    }
                    if stopped { channel.close(promise: nil) }
                case .failure(let error):
                    self.problem("cannot connect to \(self.peer.peer): \(error)")
                    // Nobody listens there: the peer's process is gone (or not started yet).
                    if PeerSocket.isRefusal(error) { self.onUnreachable(self.peer.id) }
                    self.attemptEnded(attempt, peerMayBeGone: false)
                }
            }
    }

    /// The peer answered the handshake correctly: the connection is ready for messages. From
    /// protocol version 2 on, it is probed (see `PeerProbes`).
    func established(_ channel: any Channel, attempt: Int, version: UInt8) {
        let probing = version >= PeerWire.probeVersion
        let accepted = state.withLock { state -> Bool in
            guard state.attempt == attempt, !state.stopped else { return false }
            state.channel = channel
            state.pendingChannel = nil
            state.failures = 0
            state.lastProblem = nil
            state.probes = probing ? PeerProbes() : nil
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        logger.info("connected to peer \(peer.id) at \(peer.peer) (protocol version \(version)\(tls == nil ? "" : ", mutual TLS"))")
        if probing { startProbing(channel) }
        scheduleDrain()
    }

    /// The attempt failed or its connection closed: schedule the next one after a backoff of
    /// `peer-reconnect-min-ms` doubled per consecutive failure, capped at `peer-reconnect-max-ms`,
    /// with jitter (uniform in [delay/2, delay]) so that nodes restarted together do not retry
    /// in lockstep. Queued messages stay queued (bounded) for the next connection.
    ///
    /// An established connection that ended without a goodbye, a timeout or our own decision
    /// (`peerMayBeGone`) is reported as evidence that the peer is gone.
    func attemptEnded(_ attempt: Int, peerMayBeGone: Bool) {
        let wasConnected = state.withLock { state -> Bool in
            guard state.attempt == attempt, !state.stopped, state.reconnect == nil else { return false }
            let wasConnected = state.channel != nil && !state.closingByDecision
            state.closingByDecision = false
            state.channel = nil
            state.pendingChannel = nil
            state.probes = nil
            state.probeTimer?.cancel()
            state.probeTimer = nil
            state.failures += 1
            let delay = Self.backoffMillis(
                failures: state.failures, minMillis: settings.peerReconnectMinMillis,
                maxMillis: settings.peerReconnectMaxMillis)
            state.reconnect = eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) { self.connect() }
            return wasConnected
        }
        guard wasConnected else { return }
        logger.info("lost connection to peer \(peer.id) at \(peer.peer); reconnecting")
        if peerMayBeGone { onUnreachable(peer.id) }
    }

    /// The peer just dialed us, so the network between us works: if this link is waiting out a
    /// back-off, dial now instead.
    func redialIfWaiting() {
        let waiting = state.withLock { state -> Bool in
            guard !state.stopped, let reconnect = state.reconnect else { return false }
            reconnect.cancel()
            state.reconnect = nil
            return true
        }
        if waiting { connect() }
    }

    /// The delay before reconnection attempt number `failures` (1 for the first retry).
    static func backoffMillis(failures: Int, minMillis: Int, maxMillis: Int) -> Int {
        let exponent = min(max(failures - 1, 0), 30)
        let ceiling = min(maxMillis, minMillis << exponent)
        return Int.random(in: max(1, ceiling / 2)...max(1, ceiling))
    }

    /// Logs a connection problem at `level` (warning) the first time, at debug level while it repeats.
    func problem(_ description: String, level: Logger.Level = .warning) {
        let isNew = state.withLock { state -> Bool in
            state.counters.connectionFailures += 1
            defer { state.lastProblem = description }
            return state.lastProblem != description
        }
        if isNew {
            logger.log(level: level, "peer \(peer.id): \(description)")
        } else {
            logger.debug("peer \(peer.id): \(description)")
        }
    }

    /// The peer refused our handshake (another cluster, or it does not know us).
    func refused(_ reason: String) {
        state.withLock { $0.counters.handshakesRefused += 1 }
        if reason == PeerTransport.notMemberReason(selfID, clusterID: clusterID) {
            // A removed node (or one not added yet) hears only this: it says so, and stays out.
            problem(
                "does not count this node as a member of cluster '\(clusterID)' (it was removed, or is not added yet); "
                    + "this node takes no part until it is added (kvctl member add)", level: .info)
            return
        }
        problem("refused our connection: \(reason)")
    }

    /// Stops reconnecting, drops the queue and closes the connection.
    func stop() async {
        let channels = state.withLock { state -> [any Channel] in
            state.stopped = true
            state.reconnect?.cancel()
            state.reconnect = nil
            state.probeTimer?.cancel()
            state.probeTimer = nil
            state.queue.removeAll()
            state.queuedBytes = 0
            defer {
                state.channel = nil
                state.pendingChannel = nil
            }
            return [state.channel, state.pendingChannel].compactMap { $0 }
        }
        for channel in channels { try? await channel.close() }
    }
}

/// Counters of one peer link, for metrics and tests.
public struct PeerLinkCounters: Hashable, Sendable {
    /// Messages written to the connection.
    public var messagesSent = 0
    /// Frames written (each carries one or more messages).
    public var framesSent = 0
    /// Messages dropped because the queue was full while connected (oldest first).
    public var messagesDropped = 0
    /// Messages dropped because the queue was full while the peer could not be reached.
    public var messagesDroppedDisconnected = 0
    /// Messages dropped because they waited longer than `peer-stall-timeout-ms`.
    public var messagesExpired = 0
    /// Connections closed because their probes went unanswered for `peer-stall-timeout-ms`.
    public var stalls = 0
    /// Probes sent, and answers received.
    public var probesSent = 0
    public var probesAnswered = 0
    /// Messages dropped because they could not fit in one frame.
    public var messagesOversized = 0
    /// Connection attempts, the first included.
    public var connectAttempts = 0
    /// Failed connects and lost or refused connections.
    public var connectionFailures = 0
    /// Handshakes the peer refused.
    public var handshakesRefused = 0
    /// Messages waiting in the queue now.
    public var queuedMessages = 0
    /// Bytes waiting in the queue now.
    public var queuedBytes = 0
    /// Whether the connection is up (handshake done) and delivering: no probe has waited for an
    /// answer longer than half of `peer-stall-timeout-ms`.
    public var connected = false
}
