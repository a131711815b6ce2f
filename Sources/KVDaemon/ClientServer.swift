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
    /// pipeline of writes shares Raft round trips and fsyncs); replies are written strictly in
    /// request order, every reply that is ready going out in one write. Where a pipeline switches
    /// between reads and writes, the request waits for every earlier one to be answered, so the
    /// pipeline behaves as if run one command at a time (Redis semantics): a ReadIndex taken
    /// before an earlier write committed could miss it, and a write could overtake an earlier read.
    func exchange(
        _ inbound: NIOAsyncChannelInboundStream<[[UInt8]]>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        let pipeline = ReplyPipeline()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in pipeline.wakeups {
                    let replies = pipeline.takeWritable()
                    if !replies.isEmpty {
                        var buffer = ByteBuffer()
                        for reply in replies { buffer.writeRESPValue(reply.resp) }
                        try await outbound.write(buffer)
                    }
                    if pipeline.isDrained { return }
                }
            }
            var connection = ConnectionState()
            do {
                for try await arguments in inbound {
                    await pipeline.waitForRoom(below: UInt64(limits.pipelineRequestsMax))
                    if await start(arguments, &connection, pipeline) == .close { break }
                }
            } catch let error as RESPProtocolError {
                pipeline.complete(pipeline.reserve(), with: .err(error.message))
            }
            pipeline.finish()
            try await group.waitForAll()
        }
    }

    /// What one connection remembers between requests.
    struct ConnectionState {
        /// `READONLY` was sent: reads are served locally.
        var localReads = false
        /// Whether the previous request that went to the Raft loop was a read.
        var lastWasRead: Bool?
    }

    enum Flow { case proceed, close }

    /// Parses one request and starts it; connection-level commands are answered here.
    func start(_ arguments: [[UInt8]], _ connection: inout ConnectionState, _ pipeline: ReplyPipeline) async -> Flow {
        let sequence = pipeline.reserve()
        let command: ClientCommand
        do {
            command = try CommandParser.parse(arguments)
        } catch {
            pipeline.complete(sequence, with: .err(error.message))
            return .proceed
        }
        switch command {
        case .quit:
            pipeline.complete(sequence, with: .ok)
            return .close
        case .readOnly(let enabled):
            connection.localReads = enabled
            pipeline.complete(sequence, with: .ok)
        case .ping(let message): pipeline.complete(sequence, with: message.map { .bulk($0) } ?? .simple("PONG"))
        case .echo(let message): pipeline.complete(sequence, with: .bulk(message))
        case .emptyArray: pipeline.complete(sequence, with: .array([]))
        default:
            let isRead = command.isRead || command == .info
            if let lastWasRead = connection.lastWasRead, lastWasRead != isRead {
                await pipeline.waitForAnswers(before: sequence)
            }
            connection.lastWasRead = isRead
            let metrics = self.metrics
            let name = Self.metricName(arguments)
            let started = ContinuousClock.now
            let responder = Responder { reply in
                let elapsed = (ContinuousClock.now - started).components
                metrics.recordCommand(name, nanoseconds: elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                pipeline.complete(sequence, with: reply)
            }
            if case .refused = loop.mailbox.post(.command(command, localReads: connection.localReads, responder)) {
                pipeline.complete(sequence, with: loop.refusal())
            }
        }
        return .proceed
    }

    /// The command a latency sample is filed under: the inner command of `SESSION id seq ...` and
    /// `FENCED lock token ...`. Only parsed (known) commands reach here, so labels stay bounded.
    static func metricName(_ arguments: [[UInt8]]) -> String {
        var rest = arguments[...]
        while let first = rest.first {
            let name = CommandParser.upper(first)
            guard (name == "SESSION" || name == "FENCED"), rest.count >= 4 else { return name.lowercased() }
            rest = rest.dropFirst(3)
        }
        return "unknown"
    }

    static func encode(_ reply: Reply) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRESPValue(reply.resp)
        return buffer
    }
}

/// Open client connections, shared by the accept loop and every connection task.
final class ConnectionCount: Sendable {
    let value = Atomic<Int>(0)
}
