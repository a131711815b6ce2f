public import Logging
public import RaftCore
public import ServiceLifecycle

/// Something the Raft loop must handle. Everything that changes Raft state arrives here, so one
/// task owns it and there is never an `await` in the middle of a state change.
public enum LoopInput: Sendable {
    case tick
    case peerMessages([Message])
    case command(ClientCommand, localReads: Bool, Responder)
    /// Graceful stop: a leader hands leadership over; `done` learns whether it started to.
    case handOver(done: @Sendable (Bool) -> Void)
}

/// The sending side of the Raft loop, for the client server and the peer transport.
public struct RaftLoopHandle: Sendable {
    let continuation: AsyncStream<LoopInput>.Continuation

    /// Runs one client command through the loop and returns its reply.
    public func submit(_ command: ClientCommand, localReads: Bool) async -> Reply {
        await withCheckedContinuation { (result: CheckedContinuation<Reply, Never>) in
            let responder = Responder { result.resume(returning: $0) }
            if case .terminated = continuation.yield(.command(command, localReads: localReads, responder)) {
                result.resume(returning: .unavailable("node is shutting down"))
            }
        }
    }

    /// Hands peer messages to the loop.
    public func deliver(_ messages: [Message]) {
        continuation.yield(.peerMessages(messages))
    }
}

/// The one long-running job that owns the node (a `Service` in the daemon's `ServiceGroup`).
/// It builds the `RaftDriver` inside its own task — the driver holds SQLite connections and is
/// never shared — then handles inputs one at a time until shutdown.
public struct RaftLoop: Service {
    public typealias DriverFactory = @Sendable (_ send: @escaping @Sendable ([Message]) -> Void) throws -> RaftDriver

    let inputs: AsyncStream<LoopInput>
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
        let (stream, continuation) = AsyncStream<LoopInput>.makeStream()
        self.inputs = stream
        self.handle = RaftLoopHandle(continuation: continuation)
        self.tickMillis = tickMillis
        self.handOverWaitMillis = handOverWaitMillis
        self.logger = logger
        self.sendToPeers = sendToPeers
        self.makeDriver = makeDriver
    }

    public func run() async throws {
        let driver = try makeDriver(sendToPeers)
        logger.info("raft loop started", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
        let continuation = handle.continuation
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await Self.generateTicks(every: tickMillis, into: continuation) }
            try await withGracefulShutdownHandler {
                try await consume(driver)
            } onGracefulShutdown: {
                Self.handOverThenStop(continuation, waitMillis: handOverWaitMillis)
            }
            group.cancelAll()
        }
        logger.info("raft loop stopped", metadata: ["term": "\(driver.status.currentTerm)", "applied": "\(driver.status.appliedIndex)"])
    }

    private func consume(_ driver: RaftDriver) async throws {
        for await input in inputs {
            switch input {
            case .tick:
                try driver.tick()
            case .peerMessages(let messages):
                for error in try driver.receive(messages) { logger.warning("dropped peer message: \(error)") }
            case .command(let command, let localReads, let responder):
                try driver.handle(command, localReads: localReads, reply: responder)
            case .handOver(let done):
                done(try driver.handOverLeadership())
            }
        }
    }

    private static func generateTicks(every millis: Int, into continuation: AsyncStream<LoopInput>.Continuation) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(millis)) } catch { return }
            if case .terminated = continuation.yield(.tick) { return }
        }
    }

    /// On SIGTERM a leader first hands leadership over (so clients see a new leader at once
    /// rather than after an election timeout), then the loop stops.
    private static func handOverThenStop(_ continuation: AsyncStream<LoopInput>.Continuation, waitMillis: Int) {
        continuation.yield(
            .handOver(done: { started in
                guard started else {
                    continuation.finish()
                    return
                }
                Task {
                    try? await Task.sleep(for: .milliseconds(waitMillis))
                    continuation.finish()
                }
            }))
    }
}
