public import Logging
public import NIOCore
import NIOPosix
public import Prometheus
public import ServiceLifecycle

/// Serves `GET /metrics` (Prometheus text format), `GET /health` (the process answers: always 200,
/// with the node's view as JSON) and `GET /ready` (200 when the node is ready to serve, 503 with
/// the reasons when not; `Readiness`) on the node's `metrics` address. A deliberately tiny HTTP/1.1 responder: one request per connection, then close, so
/// it needs no HTTP stack (curl and Prometheus both accept this).
public struct MetricsServer: Service {
    /// The most bytes of request head read before the request is refused.
    public static let requestHeadBytesMax = 8 * 1024

    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let health: @Sendable () async -> String
    let readiness: @Sendable () async -> Readiness
    let group: any EventLoopGroup
    let logger: Logger

    /// - Parameter health: the JSON body of `/health`, computed on demand.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, group: any EventLoopGroup, logger: Logger,
        health: @escaping @Sendable () async -> String, readiness: @escaping @Sendable () async -> Readiness
    ) {
        self.readiness = readiness
        self.host = host
        self.port = port
        self.registry = registry
        self.group = group
        self.logger = logger
        self.health = health
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("serving metrics", metadata: ["address": "\(host):\(port)"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { try? await respond(on: connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    func respond(on connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var head = ByteBuffer()
            for try await chunk in inbound {
                var chunk = chunk
                head.writeBuffer(&chunk)
                if head.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) != nil { break }
                if head.readableBytes > Self.requestHeadBytesMax { break }
            }
            let line = String(decoding: head.readableBytesView.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = line.split(separator: " ")
            let (status, type, body): (String, String, [UInt8])
            if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" {
                (status, type, body) = ("200 OK", "text/plain; version=0.0.4", registry.emitToBuffer())
            } else if parts.count >= 2, parts[0] == "GET", parts[1] == "/health" {
                (status, type, body) = ("200 OK", "application/json", Array(await health().utf8))
            } else if parts.count >= 2, parts[0] == "GET", parts[1] == "/ready" {
                let ready = await readiness()
                (status, type, body) = (ready.isReady ? "200 OK" : "503 Service Unavailable", "application/json", Array(ready.json.utf8))
            } else {
                (status, type, body) = ("404 Not Found", "text/plain", Array("try /metrics, /health or /ready\n".utf8))
            }
            var response = ByteBuffer()
            response.writeString("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
            response.writeBytes(body)
            try await outbound.write(response)
        }
    }
}
