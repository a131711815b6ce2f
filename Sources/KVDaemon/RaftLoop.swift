public import Logging
public import RaftCore
public import ServiceLifecycle
import Synchronization

/// Something the Raft loop must handle. Everything that changes Raft state arrives here, so one
/// task owns it and there is never an `await` in the middle of a state change.
public enum LoopInput: Sendable {
    case tick
    case peerMessages([Message])
    case command(ClientCommand, localReads: Bool, Responder)
    /// Graceful stop: a leader hands leadership over; `done` learns whether it started to.
    case handOver(done: @Sendable (Bool) -> Void)
}

/// Inputs waiting for the Raft loop. Producers (client connections, the peer transport, the
/// ticker) append under a lock and wake the loop; the loop takes everything queued at once, so
/// that all proposals that arrived while it was busy (for example in an fsync) share the next
/// log write (group commit).
final class LoopMailbox: Sendable {
    private let queue = Mutex(Queue())
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    struct Queue {
        var inputs: [LoopInput] = []
        var closed = false
    }

    init() {
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `input`; false if the loop has stopped.
    @discardableResult
    func post(_ input: LoopInput) -> Bool {
        let accepted = queue.withLock { queue -> Bool in
            guard !queue.closed else { return false }
            queue.inputs.append(input)
            return true
        }
        if accepted { wake.yield() }
        return accepted
    }

    /// Everything queued so far, in arrival order.
    func drain() -> [LoopInput] {
        queue.withLock { queue in
            defer { queue.inputs.removeAll(keepingCapacity: true) }
            return queue.inputs
        }
    }

    /// Stops accepting inputs and ends the loop once it has drained what is queued.
    func close() {
        queue.withLock { $0.closed = true }
        wake.finish()
    }
}

/// The sending side of the Raft loop, for the client server and the peer transport.
public struct RaftLoopHandle: Sendable {
    let mailbox: LoopMailbox

    /// Runs one client command through the loop and returns its reply.
    public func submit(_ command: ClientCommand, localReads: Bool) async -> Reply {
        await withCheckedContinuation { (result: CheckedContinuation<Reply, Never>) in
            let responder = Responder { result.resume(returning: $0) }
            if !mailbox.post(.command(command, localReads: localReads, responder)) {
                result.resume(returning: .unavailable("node is shutting down"))
            }
        }
    }

    /// Hands peer messages to the loop.
    public func deliver(_ messages: [Message]) {
        mailbox.post(.peerMessages(messages))
    }
}

/// The one long-running job that owns the node (a `Service` in the daemon's `ServiceGroup`).
/// It builds the `RaftDriver` inside its own task — the driver holds SQLite connections and is
/// never shared — then handles inputs one at a time until shutdown.
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
        tickMillis: Int, handOverWaitMillis: Int, logger: Logger, sendToPeers: @escaping @Sendable ([Message]) -> Void,
        makeDriver: @escaping DriverFactory
    ) {
        self.mailbox = LoopMailbox()
        self.handle = RaftLoopHandle(mailbox: mailbox)
        self.tickMillis = tickMillis
        self.handOverWaitMillis = handOverWaitMillis
        self.logger = logger
        self.sendToPeers = sendToPeers
        self.makeDriver = makeDriver
    }

    public func run() async throws {
        let driver = try makeDriver(sendToPeers)
        logger.info("raft loop started", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
        let mailbox = self.mailbox
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await Self.generateTicks(every: tickMillis, into: mailbox) }
            try await withGracefulShutdownHandler {
                try await consume(driver)
            } onGracefulShutdown: {
                Self.handOverThenStop(mailbox, handOver, waitMillis: handOverWaitMillis)
            }
            group.cancelAll()
        }
        logger.info("raft loop stopped", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
    }

    private func consume(_ driver: RaftDriver) async throws {
        for await _ in mailbox.wakeups {
            let inputs = mailbox.drain()
            guard !inputs.isEmpty else { continue }
            for error in try driver.process(inputs) { logger.warning("dropped peer message: \(error)") }
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
    }

    private static func generateTicks(every millis: Int, into mailbox: LoopMailbox) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(millis)) } catch { return }
            if !mailbox.post(.tick) { return }
        }
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

/// When a graceful stop must end even if leadership has not moved; nil until a hand-over starts.
final class HandOverDeadline: Sendable {
    private let value = Mutex<ContinuousClock.Instant?>(nil)

    var deadline: ContinuousClock.Instant? { value.withLock { $0 } }

    func set(_ deadline: ContinuousClock.Instant) { value.withLock { $0 = deadline } }
}
