import KVProtocol
import NIOCore
import NIOPosix
import Synchronization

/// What the scripted server does with one request.
enum ScriptedAnswer: Sendable {
    case reply(RESPValue)
    /// Closes the connection without answering.
    case hangUp
}

/// An in-process RESP server on an ephemeral loopback port that answers by a script and keeps
/// every request it received.
final class ScriptedServer: Sendable {
    let channel: any Channel
    let endpoint: KVEndpoint
    let received: Mutex<[[String]]>

    private init(channel: any Channel) {
        self.channel = channel
        endpoint = KVEndpoint(host: "127.0.0.1", port: channel.localAddress?.port ?? 0)
        received = Mutex([])
    }

    var requests: [[String]] { received.withLock { $0 } }

    static func start(_ script: @escaping @Sendable (_ request: [String], _ index: Int) -> ScriptedAnswer) async throws -> ScriptedServer {
        let log = RequestLog()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(RESPRequestDecoder()), ScriptedHandler(log: log, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = ScriptedServer(channel: channel)
        log.server.withLock { $0 = server }
        return server
    }

    func stop() async {
        try? await channel.close()
    }
}

/// Lets handlers reach the server's request list (created after the bootstrap).
final class RequestLog: Sendable {
    let server = Mutex<ScriptedServer?>(nil)

    func append(_ request: [String]) -> Int {
        guard let server = server.withLock({ $0 }) else { return 0 }
        return server.received.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
    }
}

final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = [[UInt8]]
    typealias OutboundOut = ByteBuffer

    let log: RequestLog
    let script: @Sendable ([String], Int) -> ScriptedAnswer

    init(log: RequestLog, script: @escaping @Sendable ([String], Int) -> ScriptedAnswer) {
        self.log = log
        self.script = script
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data).map { String(decoding: $0, as: UTF8.self) }
        switch script(request, log.append(request)) {
        case .reply(let value):
            var buffer = context.channel.allocator.buffer(capacity: 64)
            buffer.writeRESPValue(value)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .hangUp:
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
