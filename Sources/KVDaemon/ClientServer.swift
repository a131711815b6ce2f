public import KVProtocol
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The RESP2 client server (docs/PROTOCOL.md): multibulk and inline requests, pipelined. Each
/// connection is handled in its own child task; a bad or abusive client gets an error and is
/// closed without affecting any other (after swift-nio's NIOTCPEchoServer example).
public struct ClientServer: Service {
    public struct Limits: Sendable {
        public var request = RESPLimits()
        /// Requests a connection may have in flight before it is refused and closed.
        public var pipelineRequestsMax = 1024
        /// Open client connections; one more is told so and closed.
        public var connectionsMax = 1024
        public init() {}
    }

    public typealias ServerChannel = NIOAsyncChannel<NIOAsyncChannel<[[UInt8]], ByteBuffer>, Never>

    let server: ServerChannel
    let limits: Limits
    let loop: RaftLoopHandle
    let metrics: DaemonMetrics
    let logger: Logger
    let connections = ConnectionCount()

    /// Binds the client address now, so that a port in use fails the start with a clear error
    /// before any service runs.
    public static func bind(
        host: String, port: Int, limits: Limits, loop: RaftLoopHandle, group: any EventLoopGroup,
        metrics: DaemonMetrics, logger: Logger
    ) async throws -> ClientServer {
        let request = limits.request
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPRequestDecoder(limits: request)))
                    return try NIOAsyncChannel<[[UInt8]], ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("serving clients", metadata: ["address": "\(host):\(port)"])
        return ClientServer(server: server, limits: limits, loop: loop, metrics: metrics, logger: logger)
    }

    init(server: ServerChannel, limits: Limits, loop: RaftLoopHandle, metrics: DaemonMetrics, logger: Logger) {
        self.server = server
        self.limits = limits
        self.loop = loop
        self.metrics = metrics
        self.logger = logger
    }

    /// The address the server listens on (useful when bound to port 0).
    public var localAddress: SocketAddress? { server.channel.localAddress }

    public func run() async throws {
        let server = self.server
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// Serves one connection until the client leaves, sends QUIT, breaks the protocol or the
    /// server shuts down.
    func serve(_ connection: NIOAsyncChannel<[[UInt8]], ByteBuffer>) async {
        let open = connections.value.add(1, ordering: .relaxed).newValue
        metrics.connectedClients.record(open)
        defer { metrics.connectedClients.record(connections.value.subtract(1, ordering: .relaxed).newValue) }
        do {
            try await withGracefulShutdownHandler {
                try await connection.executeThenClose { inbound, outbound in
                    if open > limits.connectionsMax {
                        try await outbound.write(Self.encode(.err("max number of clients reached")))
                        return
                    }
                    try await exchange(inbound, outbound)
                }
            } onGracefulShutdown: {
                connection.channel.close(promise: nil)
            }
        } catch {
            logger.debug("client connection ended: \(error)")
        }
    }

    /// Requests are handed to the Raft loop in arrival order and may run concurrently (so a
    /// pipeline of writes shares Raft round trips); replies are written strictly in request order
    /// by one writer. A read waits for the connection's earlier writes, and a write for its
    /// earlier reads, so a pipeline behaves as if run one command at a time (Redis semantics).
    func exchange(
        _ inbound: NIOAsyncChannelInboundStream<[[UInt8]]>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        let (replies, sink) = AsyncStream<Task<Reply, Never>>.makeStream(
            bufferingPolicy: .bufferingOldest(limits.pipelineRequestsMax))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await reply in replies { try await outbound.write(Self.encode(await reply.value)) }
            }
            var localReads = false
            var order = PipelineOrder()
            do {
                requests: for try await arguments in inbound {
                    let task = await start(arguments, localReads: &localReads, order: &order)
                    if case .dropped = sink.yield(task.reply) {
                        logger.notice("client exceeded pipeline-requests-max; closing")
                        break requests
                    }
                    if task.close { break requests }
                }
            } catch let error as RESPProtocolError {
                sink.yield(Task { .err(error.message) })
            }
            sink.finish()
            try await group.waitForAll()
        }
    }

    /// Parses one request and starts it. Connection-level commands are answered here.
    func start(
        _ arguments: [[UInt8]], localReads: inout Bool, order: inout PipelineOrder
    ) async -> (reply: Task<Reply, Never>, close: Bool) {
        let command: ClientCommand
        do {
            command = try CommandParser.parse(arguments)
        } catch {
            return (Task { .err(error.message) }, false)
        }
        switch command {
        case .quit: return (Task { .ok }, true)
        case .readOnly(let enabled):
            localReads = enabled
            return (Task { .ok }, false)
        case .ping(let message): return (Task { message.map { .bulk($0) } ?? .simple("PONG") }, false)
        case .echo(let message): return (Task { .bulk(message) }, false)
        case .emptyArray: return (Task { .array([]) }, false)
        default:
            let reads = localReads
            let loop = self.loop
            let metrics = self.metrics
            let name = CommandParser.upper(arguments.first ?? []).lowercased()
            let isRead: Bool
            if case .info = command { isRead = true } else { isRead = command.isRead }
            await order.waitForEarlier(isRead: isRead)
            let started = ContinuousClock.now
            let submitted = loop.enqueue(command, localReads: reads)
            let previous = isRead ? order.lastRead : order.lastWrite
            let task = Task {
                var reply = Reply.unavailable("node is shutting down")
                for await first in submitted {
                    reply = first
                    break
                }
                let elapsed = ContinuousClock.now - started
                metrics.recordCommand(name, nanoseconds: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
                _ = await previous?.value  // completes after the earlier ones of its kind
                return reply
            }
            if isRead { order.lastRead = task } else { order.lastWrite = task }
            return (task, false)
        }
    }

    static func encode(_ reply: Reply) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRESPValue(reply.resp)
        return buffer
    }
}

/// Keeps one connection's pipeline in program order: commands reach the Raft loop in arrival
/// order (so writes enter the log in that order), a read is handed over only once the earlier
/// writes completed (a ReadIndex taken earlier could miss them), and a write only once the earlier
/// reads completed (so they cannot see it).
struct PipelineOrder {
    /// Completes once the latest write and every write before it completed.
    var lastWrite: Task<Reply, Never>?
    /// Completes once the latest read and every read before it completed.
    var lastRead: Task<Reply, Never>?

    mutating func waitForEarlier(isRead: Bool) async {
        if isRead {
            if let write = lastWrite { _ = await write.value }
            lastWrite = nil
        } else {
            if let read = lastRead { _ = await read.value }
            lastRead = nil
        }
    }
}

extension RaftLoopHandle {
    /// Hands `command` to the loop now, before returning; its reply will be the stream's one element.
    func enqueue(_ command: ClientCommand, localReads: Bool) -> AsyncStream<Reply> {
        let (reply, sink) = AsyncStream<Reply>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let responder = Responder {
            sink.yield($0)
            sink.finish()
        }
        if !mailbox.post(.command(command, localReads: localReads, responder)) {
            sink.yield(.unavailable("node is shutting down"))
            sink.finish()
        }
        return reply
    }
}

/// Open client connections, shared by the accept loop and every connection task.
final class ConnectionCount: Sendable {
    let value = Atomic<Int>(0)
}
