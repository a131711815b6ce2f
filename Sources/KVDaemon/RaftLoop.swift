public import Logging
public import RaftCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// Something the Raft loop must handle. Everything that changes Raft state arrives here, so one
/// task owns it and there is never an `await` in the middle of a state change.
public enum LoopInput: Sendable {
    case tick
    case peerMessages([Message])
    /// The transport's evidence that a peer is gone (`RaftNode.peerUnreachable`).
    case peerUnreachable(NodeID)
    /// The transport saw a peer stop answering on an open connection (`RaftNode.peerStalled`).
    case peerStalled(NodeID)
    case command(ClientCommand, routing: CommandRouting, Responder)
    /// Graceful stop: a leader hands leadership over; `done` learns whether it started to.
    case handOver(done: @Sendable (Bool) -> Void)
}

/// Inputs waiting for the Raft loop. Producers (client connections and the peer transport, on
/// their event-loop threads) append under a lock and wake the loop's thread; the loop takes
/// everything queued at once, so that all proposals that arrived while it was busy (for example
/// in an fsync) share the next log write (group commit).
///
/// Bounded, so that a loop that falls behind cannot be buried: at most one tick waits (a loop
/// that was stalled does not then run a burst of ticks, which would look like a silent leader to
/// its election timer); peer batches beyond `peerBatchesMax` drop the oldest (Raft tolerates lost
/// messages, and the newest carry the most recent state); client commands beyond `commandsMax`
/// are refused at once with a definite error, which pushes back on the clients.
final class LoopMailbox: Sendable {
    private let queue = Mutex(Queue())
    /// Wakes the loop's thread when something is queued.
    let signal = LoopSignal()
    let limits: Limits

    /// How much may wait for the loop.
    struct Limits: Sendable {
        var peerBatchesMax = 4_096
        var commandsMax = 100_000
    }

    struct Queue {
        var inputs: [LoopInput] = []
        var closed = false
        var tickQueued = false
        var peerBatches = 0
        var commands = 0
        /// Peer batches dropped because too many were waiting.
        var peerBatchesDropped: UInt64 = 0
    }

    /// What `post` did with an input.
    enum Outcome {
        case queued
        /// Queued, and the oldest peer batch dropped to make room.
        case queuedDroppingOldest
        /// A tick was already waiting; this one is merged into it.
        case merged
        /// The queue is full (commands) or the loop has stopped.
        case refused
    }

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Queues `input` within the limits.
    @discardableResult
    func post(_ input: LoopInput) -> Outcome {
        let outcome = queue.withLock { queue -> Outcome in
            guard !queue.closed else { return .refused }
            switch input {
            case .tick:
                if queue.tickQueued { return .merged }
                queue.tickQueued = true
            case .peerMessages:
                if queue.peerBatches >= limits.peerBatchesMax,
                    let oldest = queue.inputs.firstIndex(where: { if case .peerMessages = $0 { true } else { false } })
                {
                    queue.inputs.remove(at: oldest)
                    queue.inputs.append(input)
                    queue.peerBatchesDropped += 1
                    return .queuedDroppingOldest
                }
                queue.peerBatches += 1
            case .command:
                if queue.commands >= limits.commandsMax { return .refused }
                queue.commands += 1
            case .handOver, .peerUnreachable, .peerStalled:
                break
            }
            queue.inputs.append(input)
            return .queued
        }
        switch outcome {
        case .queued, .queuedDroppingOldest: signal.signal()
        case .merged, .refused: break
        }
        return outcome
    }


    /// Everything queued so far, in arrival order.
    func drain() -> [LoopInput] {
        queue.withLock { queue in
            defer {
                queue.inputs.removeAll(keepingCapacity: true)
                queue.tickQueued = false
                queue.peerBatches = 0
                queue.commands = 0
            }
            return queue.inputs
        }
    }

    /// Whether the loop has stopped taking inputs.
    var isClosed: Bool { queue.withLock { $0.closed } }

    /// Peer batches dropped so far because the loop was behind.
    var peerBatchesDropped: UInt64 { queue.withLock { $0.peerBatchesDropped } }

    /// Stops accepting inputs and ends the loop once it has drained what is queued.
    func close() {
        queue.withLock { $0.closed = true }
        signal.signal()
    }
}

/// The sending side of the Raft loop, for the client server and the peer transport.
public struct RaftLoopHandle: PeerInboundConsumer {
    let mailbox: LoopMailbox
    /// Takes client replies to their event loops once per iteration.
    let courier: ReplyCourier
    /// Whether this node led at the end of the loop's last iteration (for `HELLO`'s role).
    let leading: LeadingFlag

    init(mailbox: LoopMailbox, courier: ReplyCourier = ReplyCourier(), leading: LeadingFlag = LeadingFlag()) {
        self.mailbox = mailbox
        self.courier = courier
        self.leading = leading
    }

    /// Runs one client command through the loop and returns its reply.
    public func submit(_ command: ClientCommand, localReads: Bool) async -> Reply {
        await withCheckedContinuation { (result: CheckedContinuation<Reply, Never>) in
            let responder = Responder { result.resume(returning: $0) }
            switch mailbox.post(.command(command, routing: CommandRouting(localReads: localReads), responder)) {
            case .queued, .queuedDroppingOldest, .merged: break
            case .refused: result.resume(returning: refusal())
            }
        }
    }

    /// The reply to a command the mailbox refused: definite in both cases (it never reached Raft).
    func refusal() -> Reply {
        mailbox.isClosed
            ? .unavailable("node is shutting down")
            : .err("server busy: \(mailbox.limits.commandsMax) requests wait for the raft loop; retry later")
    }

    /// Hands what the peer transport received to the loop, in order; false if an older batch
    /// was dropped to make room (the loop is behind).
    @discardableResult
    public func accept(_ inbound: PeerInbound) -> Bool {
        let outcome: LoopMailbox.Outcome
        switch inbound {
        case .messages(let messages): outcome = mailbox.post(.peerMessages(messages))
        case .unreachable(let peer): outcome = mailbox.post(.peerUnreachable(peer))
        case .stalled(let peer): outcome = mailbox.post(.peerStalled(peer))
        }
        if case .queuedDroppingOldest = outcome { return false }
        return true
    }
}

/// The one long-running job that owns the node (a `Service` in the daemon's `ServiceGroup`).
/// It runs on a thread of its own, never on Swift's cooperative pool: every iteration may block
/// in an fsync or a SQLite call, and a blocked pool thread would stall unrelated tasks (on a
/// 2-core machine the pool has two). It builds the `RaftDriver` on that thread — the driver holds
/// SQLite connections and is never shared — then waits for inputs or the next tick, handles
/// everything queued as one batch, and repeats until shutdown. Clients and peers reach it
/// through the mailbox from their event-loop threads, and it answers them through `Responder`s,
/// so a request crosses threads twice: event loop → Raft loop → event loop.
public struct RaftLoop: Service {
    public typealias DriverFactory = @Sendable (_ send: @escaping @Sendable ([Message]) -> Void) throws -> RaftDriver

    let mailbox: LoopMailbox
    let handOver = HandOverDeadline()
    public let handle: RaftLoopHandle
    let tickMillis: Int
    let handOverWaitMillis: Int
    let makeDriver: DriverFactory
    let sendToPeers: @Sendable ([Message]) -> Void
    let logger: Logger

    public init(
        tickMillis: Int, handOverWaitMillis: Int, commandsMax: Int = 100_000, logger: Logger,
        sendToPeers: @escaping @Sendable ([Message]) -> Void, makeDriver: @escaping DriverFactory
    ) {
        self.mailbox = LoopMailbox(limits: LoopMailbox.Limits(commandsMax: commandsMax))
        self.handle = RaftLoopHandle(mailbox: mailbox)
        self.tickMillis = tickMillis
        self.handOverWaitMillis = handOverWaitMillis
        self.logger = logger
        self.sendToPeers = sendToPeers
        self.makeDriver = makeDriver
    }

    public func run() async throws {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let mailbox = self.mailbox, handOver = self.handOver, waitMillis = handOverWaitMillis
        let outcome: Result<Void, any Error>
        do {
            try await withTaskCancellationHandler {
                try await withGracefulShutdownHandler {
                    try await thread.runIfActive { try runOnThisThread() }
                } onGracefulShutdown: {
                    Self.handOverThenStop(mailbox, handOver, waitMillis: waitMillis)
                }
            } onCancel: {
                mailbox.close()
            }
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try await thread.shutdownGracefully()
        try outcome.get()
    }

    /// The loop itself: builds the driver, then handles inputs and ticks until the mailbox closes.
    private func runOnThisThread() throws {
        let driver = try makeDriver(sendToPeers)
        driver.logger = logger
        logger.info("raft loop started", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
        let tickNanos = UInt64(tickMillis) * 1_000_000
        var nextTick = LoopSignal.nowNanos() + tickNanos
        while !mailbox.isClosed {
            // Leftover `Ready`s (a long catch-up cut short by its budget) come back at once.
            if !driver.hasPendingWork { mailbox.signal.wait(untilNanos: nextTick) }
            let now = LoopSignal.nowNanos()
            if now >= nextTick {
                // Through the mailbox, which keeps at most one tick waiting: a loop that was held
                // up does not then run a burst of ticks, which would look like a silent leader to
                // its election timer.
                mailbox.post(.tick)
                nextTick = max(nextTick + tickNanos, now + tickNanos / 2)
            }
            let inputs = mailbox.drain()
            guard !inputs.isEmpty || driver.hasPendingWork else { continue }
            for error in try driver.process(inputs) { logger.warning("dropped peer message: \(error)") }
            handle.courier.deliver()
            handle.leading.value.store(driver.status.role == .leader, ordering: .relaxed)
            // A hand-over is complete once another node leads (its first message deposes us);
            // the deadline bounds the wait if the target never takes over.
            if let deadline = handOver.deadline, driver.status.role != .leader || ContinuousClock.now >= deadline {
                mailbox.close()
            }
        }
        // Handle whatever arrived after the last wake-up, then answer everything still waiting,
        // so that no client waits forever on a node that is gone.
        for error in try driver.process(mailbox.drain()) { logger.warning("dropped peer message: \(error)") }
        driver.abandonPending()
        handle.courier.deliver()
        logger.info("raft loop stopped", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
    }

    /// On SIGTERM a leader first hands leadership over (so clients see a new leader at once
    /// rather than after an election timeout), then the loop stops; a non-leader stops at once.
    private static func handOverThenStop(_ mailbox: LoopMailbox, _ handOver: HandOverDeadline, waitMillis: Int) {
        mailbox.post(
            .handOver(done: { started in
                if started {
                    handOver.set(ContinuousClock.now + .milliseconds(waitMillis))
                } else {
                    mailbox.close()
                }
            }))
    }
}

/// Whether the node leads, as the loop last saw it; read by client connections.
final class LeadingFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// When a graceful stop must end even if leadership has not moved; nil until a hand-over starts.
final class HandOverDeadline: Sendable {
    private let value = Mutex<ContinuousClock.Instant?>(nil)

    var deadline: ContinuousClock.Instant? { value.withLock { $0 } }

    func set(_ deadline: ContinuousClock.Instant) { value.withLock { $0 = deadline } }
}
