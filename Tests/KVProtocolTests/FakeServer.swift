import KVProtocol
import NIOCore
import NIOPosix
import Synchronization

/// What the fake server does with one request.
enum FakeAction: Sendable {
    case reply(RESPValue)
    /// Close the connection without answering: the request reached the server, the reply never
    /// comes back (the client cannot know whether it took effect).
    case close
    /// Send bytes that are not RESP.
    case garbage
}

/// A tiny in-process RESP server on 127.0.0.1 with an ephemeral port, answering by a script,
/// recording every request it receives.
final class FakeServer: Sendable {
    let channel: any Channel
    let endpoint: KVEndpoint
    private let log: Recorder

    private init(channel: any Channel, log: Recorder) {
        self.channel = channel
        self.endpoint = KVEndpoint(host: "127.0.0.1", port: channel.localAddress?.port ?? 0)
        self.log = log
    }

    /// Requests received so far, as text.
    var requests: [[String]] { log.requests.withLock { $0 } }

    /// Starts a server; `script` gets each request and the number of requests seen before it.
    static func start(_ script: @escaping @Sendable (_ request: [String], _ index: Int) -> FakeAction) async throws -> FakeServer {
        let log = Recorder()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(RESPRequestDecoder()), FakeServerHandler(log: log, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeServer(channel: channel, log: log)
    }

    func requestsMatching(_ first: String) -> [[String]] {
        requests.filter { $0.first == first }
    }

    func stop() async {
        try? await channel.close()
    }
}

/// Shares the request log between the server's connections.
final class Recorder: Sendable {
    let requests = Mutex<[[String]]>([])
}

final class FakeServerHandler: ChannelInboundHandler {
    typealias InboundIn = [[UInt8]]
    typealias OutboundOut = ByteBuffer

    let log: Recorder
    let script: @Sendable ([String], Int) -> FakeAction

    init(log: Recorder, script: @escaping @Sendable ([String], Int) -> FakeAction) {
        self.log = log
        self.script = script
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let request = unwrapInboundIn(data).map { String(decoding: $0, as: UTF8.self) }
        let index = log.requests.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        switch script(request, index) {
        case .reply(let value):
            buffer.writeRESPValue(value)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .close:
            context.close(promise: nil)
        case .garbage:
            buffer.writeString("HTTP/1.1 400 Bad Request\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A client for `servers` with short timeouts, so failing paths finish quickly.
func makeClient(_ endpoints: [KVEndpoint], timeout: Duration = .seconds(2)) -> KVClient {
    var configuration = KVClient.Configuration(endpoints: endpoints)
    configuration.requestTimeout = timeout
    configuration.attemptTimeout = .milliseconds(500)
    configuration.backoffInitial = .milliseconds(5)
    configuration.backoffMax = .milliseconds(20)
    return KVClient(configuration: configuration)
}

/// An endpoint that refuses connections: a port that was just bound and released.
/// Make it after a test's own servers: a server started later may be given the same port.
func refusingEndpoint() async throws -> KVEndpoint {
    let server = try await FakeServer.start { _, _ in .reply(.ok) }
    let endpoint = server.endpoint
    await server.stop()
    return endpoint
}
