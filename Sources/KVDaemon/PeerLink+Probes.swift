import Logging
import NIOCore

extension PeerLink {
    /// Probes `channel` every `heartbeat-ms` until it is no longer this link's connection.
    func startProbing(_ channel: any Channel) {
        let interval = TimeAmount.milliseconds(Int64(settings.heartbeatMillis))
        let task = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            self.probe(channel, task: task)
        }
        let current = state.withLock { state -> Bool in
            guard state.channel === channel else { return false }
            state.probeTimer?.cancel()
            state.probeTimer = task
            return true
        }
        if !current { task.cancel() }
    }

    private enum ProbeStep {
        case stop
        case stalled(TimeAmount)
        case send(UInt64)
    }

    /// One probe round: closes the connection if its oldest probe waited `peer-stall-timeout-ms`,
    /// otherwise sends the next probe. Probes are written even while the channel is not writable:
    /// they are tiny, and a connection that stays unwritable is exactly what they detect.
    private func probe(_ channel: any Channel, task: RepeatedTask) {
        let now = NIODeadline.now()
        let stallTimeout = TimeAmount.milliseconds(Int64(settings.peerStallTimeoutMillis))
        let step = state.withLock { state -> ProbeStep in
            guard !state.stopped, state.channel === channel, var probes = state.probes else { return .stop }
            if let waited = probes.oldestUnansweredAge(at: now), waited >= stallTimeout {
                state.counters.stalls += 1
                state.closingByDecision = true
                return .stalled(waited)
            }
            let sequence = probes.send(at: now)
            state.probes = probes
            state.counters.probesSent += 1
            return .send(sequence)
        }
        switch step {
        case .stop:
            task.cancel()
        case .stalled(let waited):
            task.cancel()
            logger.warning(
                "peer \(peer.id) at \(peer.peer): no probe answered for \(waited.nanoseconds / 1_000_000) ms (peer-stall-timeout-ms \(settings.peerStallTimeoutMillis)); closing the connection and redialing")
            // channelInactive then ends the attempt and redials. A stall is a judgment about
            // timing, not evidence that the peer is gone: Raft only uses it to campaign when its
            // leader lease ends rather than later (`RaftNode.peerStalled`).
            onStalled(peer.id)
            let reason = "no probe answered for \(waited.nanoseconds / 1_000_000) ms; redialing"
            PeerSocket.close(channel, goodbye: reason)
        case .send(let sequence):
            channel.writeAndFlush(PeerOutboundFrame.probe(sequence), promise: nil)
        }
    }

    /// The peer answered probe `sequence` on `channel`.
    func probeAnswered(_ sequence: UInt64, on channel: any Channel) {
        state.withLock { state in
            guard state.channel === channel, var probes = state.probes else { return }
            if probes.answer(sequence) { state.counters.probesAnswered += 1 }
            state.probes = probes
        }
    }
}
