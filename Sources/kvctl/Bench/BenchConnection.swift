import KVProtocol
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic nanoseconds (CLOCK_MONOTONIC, as NIO's deadlines), the one clock of a run.
enum BenchClock {
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

/// Why a request got no reply.
enum BenchTransportFailure: Error, Sendable, Equatable {
    /// The connection was closed before the request could be written (nothing sent).
    case notSent
    /// The connection closed after the request was sent.
    case closed
    /// No reply within the request timeout; the connection was closed.
    case timedOut
    /// The server sent bytes that are not RESP2; the connection was closed.
    case protocolViolation
}

/// A reply and when it arrived (stamped on the event loop, so awaiting it adds no latency).
struct BenchReply: Sendable {
    var value: RESPValue
    var receivedAt: UInt64
}

/// Requests handed to `BenchPipelineHandler`: written together, answered in order.
struct BenchBatch: Sendable {
    var requests: [[[UInt8]]]
    var replies: [EventLoopPromise<BenchReply>]
    var timeout: TimeAmount
}

/// Matches replies to requests in order, any number in flight (RESP replies come back in the
/// order of the requests on a connection). A request unanswered after its timeout fails every
/// pending request and closes the connection. State is touched on the channel's event loop only.
final class BenchPipelineHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = BenchBatch
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var reply: EventLoopPromise<BenchReply>
        var timer: Scheduled<Void>?
    }

    private var pending = CircularBuffer<Pending>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let batch = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            for reply in batch.replies { reply.fail(BenchTransportFailure.notSent) }
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * batch.requests.count)
        let deadline = NIODeadline.now() + batch.timeout
        for (index, request) in batch.requests.enumerated() {
            buffer.writeRESPCommand(request)
            // One timer for the last of the batch is enough: replies come in order.
            let timer =
                index == batch.requests.count - 1
                ? context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                    self.failAll(.timedOut)
                    context.close(promise: nil)
                } : nil
            pending.append(Pending(reply: batch.replies[index], timer: timer))
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let first = pending.popFirst() else {
            // A reply nobody asked for: the stream is out of step.
            context.close(promise: nil)
            return
        }
        first.timer?.cancel()
        first.reply.succeed(BenchReply(value: value, receivedAt: BenchClock.now()))
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error is RESPProtocolError ? .protocolViolation : .closed)
        context.close(promise: nil)
    }

    private func failAll(_ failure: BenchTransportFailure) {
        while let entry = pending.popFirst() {
            entry.timer?.cancel()
            entry.reply.fail(failure)
        }
    }
}

/// One benchmark connection: a batch of requests is written with one flush and its replies are
/// awaited in order (`redis-benchmark -P` semantics when the batch has several).
struct BenchConnection: Sendable {
    let endpoint: KVEndpoint
    let channel: any Channel

    static func connect(
        to endpoint: KVEndpoint,
        timeout: Duration,
        credentials: ClientCredentials? = nil,
        tls: NIOSSLContext? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(BenchError) -> BenchConnection {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try TLSClient.addHandlers(
                            to: channel.pipeline.syncOperations, context: tls, host: endpoint.host, timeout: TimeAmount(timeout))
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(RESPReplyDecoder()), BenchPipelineHandler())
                }
            }
        let connection: BenchConnection
        do {
            let channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
            connection = BenchConnection(endpoint: endpoint, channel: channel)
        } catch {
            throw .unreachable("cannot connect to \(endpoint): \(Self.reason(error))")
        }
        if tls != nil {
            do {
                try await TLSClient.handshake(on: connection.channel)
            } catch {
                throw .unreachable("\(endpoint): \(error)")
            }
        }
        if let credentials {
            switch await connection.send([credentials.authRequest], timeout: timeout).first {
            case .success(let reply)?:
                if case .error(let line) = reply.value {
                    connection.close()
                    throw .unreachable("\(endpoint): \(line)")
                }
            case .failure(let failure)?:
                connection.close()
                throw .unreachable("\(endpoint): \(BenchFailureKind.transport(failure).name) while authenticating")
            case nil: break
            }
        }
        // The load goes to the leader itself: a kvd follower would otherwise forward it
        // (docs/PROTOCOL.md, "Followers"). Any reply will do; redis-server answers an error.
        if case .failure(let failure) = await connection.send(Self.redirectRequest, timeout: timeout) {
            connection.close()
            throw .unreachable("\(endpoint): \(BenchFailureKind.transport(failure).name) while asking for redirects")
        }
        return connection
    }

    /// `CLIENT REDIRECT ON`, sent first on every connection.
    static let redirectRequest: [[UInt8]] = ["CLIENT", "REDIRECT", "ON"].map { Array($0.utf8) }

    /// Sends `requests` together; each result is a reply or why there is none.
    func send(_ requests: [[[UInt8]]], timeout: Duration) async -> [Result<BenchReply, BenchTransportFailure>] {
        let promises = requests.map { _ in channel.eventLoop.makePromise(of: BenchReply.self) }
        let batch = BenchBatch(requests: requests, replies: promises, timeout: TimeAmount(timeout))
        channel.writeAndFlush(batch).whenFailure { _ in
            for promise in promises { promise.fail(BenchTransportFailure.notSent) }
        }
        var results: [Result<BenchReply, BenchTransportFailure>] = []
        results.reserveCapacity(promises.count)
        for promise in promises {
            do {
                results.append(.success(try await promise.futureResult.get()))
            } catch {
                results.append(.failure(error as? BenchTransportFailure ?? .closed))
            }
        }
        return results
    }

    /// Sends one request.
    func send(_ request: [[UInt8]], timeout: Duration) async -> Result<BenchReply, BenchTransportFailure> {
        await send([request], timeout: timeout)[0]
    }

    var isActive: Bool { channel.isActive }

    func close() {
        channel.close(promise: nil)
    }

    private static func reason(_ error: any Error) -> String {
        if let connectionError = error as? NIOConnectionError, let first = connectionError.connectionErrors.first {
            return reason(first.error)
        }
        if let ioError = error as? IOError { return String(cString: strerror(ioError.errnoCode)) }
        if case ChannelError.connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}

extension Duration {
    /// Whole nanoseconds of a non-negative duration.
    var benchNanos: UInt64 {
        let parts = components
        return UInt64(max(0, parts.seconds)) * 1_000_000_000 + UInt64(max(0, parts.attoseconds)) / 1_000_000_000
    }
}
