public import KVProtocol
public import Logging
public import NIOCore
import NIOPosix
public import NIOSSL
public import ServiceLifecycle
import Synchronization

/// The RESP2 client server (docs/PROTOCOL.md): multibulk and inline requests, pipelined. Each
/// connection is a `ClientConnection` handler on its event loop; a bad or abusive client gets an
/// error and is closed without affecting any other.
public struct ClientServer: Service {
    public struct Limits: Sendable {
        public var request = RESPLimits()
        /// Requests a connection may have unanswered before it stops reading its socket.
        public var pipelineRequestsMax = 1024
        /// Open client connections; one more is told so and closed.
        public var connectionsMax = 1024
        /// The node's settings as `CONFIG GET` shows them (name, value), beside Redis's parameters.
        public var settings: [ConfigParameter] = []
        /// `client-partial-request-timeout-ms` and `client-reply-bytes-max`.
        public var partialRequestTimeoutMillis = 30_000
        public var replyBytesMax = 64 << 20
        /// Every node's `client-tls=` address, by id.
        public var tlsAddresses: [UInt64: String] = [:]
        /// The TLS listener, if this node has a `client-tls=` address: its address and context.
        public var tls: (address: HostPort, context: NIOSSLContext)?
        /// Whether to listen at the plain address too (false: clients over TLS only).
        public var servesPlainClients = true
        /// The users clients authenticate as (none: authentication is off).
        public var users = UserDirectory()
        public init() {}
    }

    /// The plain listener first (unless clients are served over TLS only), then the TLS one if
    /// configured.
    let servers: [any Channel]
    let connections: ClientChannels
    /// Checks passwords; `Daemon.reloadUsers` replaces its users.
    let authenticator: Authenticator
    let logger: Logger

    /// Binds the client addresses now (`host:port` is the plain one), so that a port in use fails
    /// the start with a clear error before any service runs.
    public static func bind(
        host: String, port: Int, limits: Limits, loop: RaftLoopHandle, group: any EventLoopGroup,
        metrics: DaemonMetrics, logger: Logger
    ) async throws -> ClientServer {
        let request = limits.request
        let connections = ClientChannels()
        let authenticator = Authenticator(users: limits.users, metrics: metrics, logger: logger)
        let shared = ClientConnection.Shared(
            loop: loop, metrics: metrics, pipelineRequestsMax: limits.pipelineRequestsMax,
            connectionsMax: limits.connectionsMax, connections: connections, courier: loop.courier,
            settings: limits.settings,
            partialRequestTimeout: .milliseconds(Int64(limits.partialRequestTimeoutMillis)), replyBytesMax: limits.replyBytesMax,
            tlsAddresses: limits.tlsAddresses,
            authenticator: authenticator)
        func listen(_ host: String, _ port: Int, tls: NIOSSLContext?) async throws -> any Channel {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
                        try sync.addHandler(ByteToMessageHandler(RESPRequestDecoder(limits: request)))
                        try sync.addHandler(ClientConnection(shared: shared, overTLS: tls != nil))
                    }
                }
                .bind(host: host, port: port).get()
        }
        var servers: [any Channel] = []
        if limits.servesPlainClients || limits.tls == nil {
            servers.append(try await listen(host, port, tls: nil))
            logger.info("serving clients", metadata: ["address": "\(host):\(port)"])
        }
        if let tls = limits.tls {
            do {
                servers.append(try await listen(tls.address.host, tls.address.port, tls: tls.context))
            } catch {
                for server in servers { server.close(promise: nil) }
                throw ClientTLSBindError(address: tls.address, underlying: error)
            }
            logger.info("serving clients over TLS", metadata: ["address": "\(tls.address)"])
        }
        return ClientServer(servers: servers, connections: connections, authenticator: authenticator, logger: logger)
    }

    /// The address the server listens on (useful when bound to port 0).
    public var localAddress: SocketAddress? { servers[0].localAddress }

    /// Serves until graceful shutdown, then stops listening and closes every connection.
    public func run() async throws {
        let servers = self.servers, connections = self.connections
        try await withGracefulShutdownHandler {
            for server in servers { try await server.closeFuture.get() }
        } onGracefulShutdown: {
            for server in servers { server.close(promise: nil) }
            connections.closeAll()
        }
        connections.closeAll()
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
}


/// The TLS client address could not be bound.
struct ClientTLSBindError: Error, CustomStringConvertible {
    let address: HostPort
    let underlying: any Error
    var description: String { "cannot listen for TLS clients on \(address): \(socketErrorText(underlying))" }
}
