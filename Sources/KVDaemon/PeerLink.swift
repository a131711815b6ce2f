import Logging
import NIOCore
import NIOPosix
import RaftCore
import Synchronization

/// The sending side towards one other node: a bounded queue of encoded messages and the one TCP
/// connection this node dials to that peer, reconnected with capped exponential backoff.
///
/// Thread-safety: `enqueue` is called from the Raft loop, everything else runs on `eventLoop`;
/// all mutable state is inside one `Mutex`, which is never held across a channel operation.
///
/// Queue policy: when the queue holds `peer-queue-messages-max` messages or
/// `peer-queue-bytes-max` bytes, the OLDEST messages are dropped (and counted). Raft tolerates
/// loss — a leader resends whatever a follower lacks once it hears back — and the newest messages
/// carry the newest term, commit index and log position, which are the ones worth delivering to
/// a peer that comes back. Keeping the oldest instead would deliver stale heartbeats first.
/// Messages that waited longer than `peer-stall-timeout-ms` are dropped when they reach the front
/// (expired), so a link that comes back after a partition sends fresh messages first.
///
/// Liveness (see `PeerProbes`): on a version-2 connection the link probes every `heartbeat-ms`;
/// a connection whose oldest unanswered probe is older than `peer-stall-timeout-ms` is closed and
/// redialed. `counters.connected` is true only while probes are being answered.
final class PeerLink: Sendable {
    let peer: ClusterNode
    let selfID: NodeID
    let clusterID: String
    let settings: ClusterSettings
    /// The cluster secret this node proves and demands in handshakes (nil: none).
    let secret: PeerSecret?
    /// Mutual TLS for the connections this link dials (nil: plain TCP).
    let tls: PeerTLS?
    let eventLoop: any EventLoop
    let logger: Logger
    let state: Mutex<State>
    /// Called (on the event loop) with the evidence that the peer is gone: its connection ended
    /// without a goodbye, or nobody listens at its address.
    let onUnreachable: @Sendable (NodeID) -> Void
    /// Called (on the event loop) when the peer stopped answering probes on an open connection.
    let onStalled: @Sendable (NodeID) -> Void

    /// Frames written per drain before yielding the event loop to other connections.
    static let framesPerDrainMax = 16

    /// An encoded message waiting to be sent, with the time it was queued (for expiry).
    struct Queued {
        var bytes: ByteBuffer
        var queuedAt: NIODeadline
    }

    struct State {
        var queue = CircularBuffer<Queued>()
        var queuedBytes = 0
        /// The connection, once its handshake succeeded.
        var channel: (any Channel)?
        /// The connection being set up (before the handshake), so `stop` can close it.
        var pendingChannel: (any Channel)?
        /// Numbers connection attempts, so callbacks of an old attempt are ignored.
        var attempt = 0
        var failures = 0
        var draining = false
        var reconnect: Scheduled<Void>?
        var stopped = false
        /// The last problem logged at warning level: repeats are logged at debug level only, so a
        /// peer that stays down does not flood the log at every retry.
        var lastProblem: String?
        /// The probes of the current connection, if it speaks a version with probes.
        var probes: PeerProbes?
        var probeTimer: RepeatedTask?
        /// This link closes its connection by its own decision (a stall): its end is no evidence
        /// that the peer is gone, and it was logged already.
        var closingByDecision = false
        var counters = PeerLinkCounters()
    }

    init(peer: ClusterNode, selfID: NodeID, clusterID: String, settings: ClusterSettings, eventLoop: any EventLoop,
         logger: Logger, secret: PeerSecret? = nil, tls: PeerTLS? = nil, onUnreachable: @escaping @Sendable (NodeID) -> Void = { _ in },
         onStalled: @escaping @Sendable (NodeID) -> Void = { _ in }) {
        self.secret = secret
        self.tls = tls
        self.onUnreachable = onUnreachable
        self.onStalled = onStalled
        self.peer = peer
        self.selfID = selfID
        self.clusterID = clusterID
        self.settings = settings
        self.eventLoop = eventLoop
        var logger = logger
        logger[metadataKey: "peer"] = "\(peer.id)"
        self.logger = logger
        self.state = Mutex(State())
    }

    var counters: PeerLinkCounters {
        let now = NIODeadline.now()
        let lagging = TimeAmount.milliseconds(Int64(settings.peerStallTimeoutMillis / 2))
        return state.withLock { state in
            var counters = state.counters
            counters.queuedMessages = state.queue.count
            counters.queuedBytes = state.queuedBytes
            // Connected means delivering: up, and no probe waiting for half the stall timeout.
            let waited = state.probes?.oldestUnansweredAge(at: now) ?? .zero
            counters.connected = state.channel != nil && waited < lagging
            return counters
        }
    }

    /// How long a queued message may wait before it is dropped as stale.
    var expiry: TimeAmount { .milliseconds(Int64(settings.peerStallTimeoutMillis)) }

    /// Queues encoded messages for this peer, dropping the oldest beyond the limits, and makes
    /// sure a drain is scheduled if the connection is up. Never blocks on I/O.
    func enqueue(_ messages: [ByteBuffer]) {
        let frameRoom = settings.peerFrameBytesMax - PeerWire.messagesFrameHeaderBytes
        var oversized = 0
        let now = NIODeadline.now()
        let drain = state.withLock { state -> Bool in
            for message in messages {
                guard message.readableBytes <= frameRoom else {
                    oversized += 1
                    continue
                }
                state.queue.append(Queued(bytes: message, queuedAt: now))
                state.queuedBytes += message.readableBytes
            }
            state.counters.messagesOversized += oversized
            while state.queue.count > settings.peerQueueMessagesMax || state.queuedBytes > settings.peerQueueBytesMax {
                let dropped = state.queue.removeFirst()
                state.queuedBytes -= dropped.bytes.readableBytes
                if state.channel == nil {
                    state.counters.messagesDroppedDisconnected += 1
                } else {
                    state.counters.messagesDropped += 1
                }
            }
            return Self.claimDrain(&state)
        }
        if oversized > 0 {
            // The configuration check (peer-frame-bytes-max) should make this impossible.
            logger.error("dropped \(oversized) message(s) larger than peer-frame-bytes-max (\(settings.peerFrameBytesMax))")
        }
        if drain { eventLoop.execute { self.drain() } }
    }

    /// Takes the right to drain if there is something to send on a live connection.
    private static func claimDrain(_ state: inout State) -> Bool {
        guard !state.draining, state.channel != nil, !state.queue.isEmpty else { return false }
        state.draining = true
        return true
    }

    /// Schedules a drain, e.g. when the channel became writable again.
    func scheduleDrain() {
        if state.withLock({ Self.claimDrain(&$0) }) { eventLoop.execute { self.drain() } }
    }

    /// Writes queued messages as frames while the channel accepts data. Stopping at
    /// `isWritable == false` keeps NIO's own outbound buffer near its high-water mark, so a slow
    /// peer's backlog stays in the bounded queue where the drop policy applies.
    private func drain() {
        let frameRoom = settings.peerFrameBytesMax - PeerWire.messagesFrameHeaderBytes
        let staleBefore = NIODeadline.now() - expiry
        var written: (any Channel)?
        for _ in 0..<Self.framesPerDrainMax {
            let batch = state.withLock { state -> (any Channel, [ByteBuffer])? in
                while let first = state.queue.first, first.queuedAt < staleBefore {
                    state.queue.removeFirst()
                    state.queuedBytes -= first.bytes.readableBytes
                    state.counters.messagesExpired += 1
                }
                guard let channel = state.channel, channel.isWritable, !state.queue.isEmpty else {
                    state.draining = false
                    return nil
                }
                var taken: [ByteBuffer] = []
                var bytes = 0
                while let first = state.queue.first, taken.isEmpty || bytes + first.bytes.readableBytes <= frameRoom {
                    taken.append(state.queue.removeFirst().bytes)
                    bytes += first.bytes.readableBytes
                }
                state.queuedBytes -= bytes
                state.counters.messagesSent += taken.count
                state.counters.framesSent += 1
                return (channel, taken)
            }
            guard let (channel, taken) = batch else {
                written?.flush()
                return
            }
            var payload = channel.allocator.buffer(capacity: taken.reduce(0) { $0 + $1.readableBytes })
            for message in taken { payload.writeImmutableBuffer(message) }
            channel.write(PeerOutboundFrame.messages(count: taken.count, bytes: payload), promise: nil)
            written = channel
        }
        written?.flush()
        // Budget used up: let other connections on this loop run, then continue (still draining).
        eventLoop.execute { self.drain() }
    }
}
