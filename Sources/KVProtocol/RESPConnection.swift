import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why one request on one connection failed.
enum RESPConnectionFailure: Error, Sendable {
    /// Nothing was sent: the connection was already closed.
    case notSent
    /// The connection closed before the reply arrived.
    case closed
    /// No reply before the attempt's deadline; the connection was closed.
    case timedOut
    /// The reply was not valid RESP2; the connection was closed.
    case protocolViolation(RESPProtocolError)
    /// Another request is in flight on this connection (a programming error in the caller).
    case busy
}

/// One request handed to `RESPClientHandler`: its arguments, the promise of its reply and the
/// time after which the connection gives up on it.
struct RESPClientRequest: Sendable {
    var arguments: [[UInt8]]
    var reply: EventLoopPromise<RESPValue>
    var deadline: NIODeadline
}

/// Matches one request with one reply on a connection, with a deadline.
///
/// One request at a time per connection: a `LOCK ... WAIT` can block its connection for a long
/// time, so concurrent requests (such as lease keepalives) use connections of their own rather
/// than queue behind it. All state is touched on the channel's event loop only.
final class RESPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RESPClientRequest
    typealias OutboundOut = ByteBuffer

    private var pending: EventLoopPromise<RESPValue>?
    private var timeout: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            request.reply.fail(RESPConnectionFailure.notSent)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        guard pending == nil else {
            request.reply.fail(RESPConnectionFailure.busy)
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        pending = request.reply
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: request.deadline) {
            self.failPending(.timedOut)
            context.close(promise: nil)
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeRESPCommand(request.arguments)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let promise = pending else {
            // A reply nobody asked for: the stream is out of step, so it cannot be trusted.
            context.close(promise: nil)
            return
        }
        pending = nil
        timeout?.cancel()
        timeout = nil
        promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPending(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let protocolError = error as? RESPProtocolError {
            failPending(.protocolViolation(protocolError))
        } else {
            failPending(.closed)
        }
        context.close(promise: nil)
    }

    private func failPending(_ failure: RESPConnectionFailure) {
        timeout?.cancel()
        timeout = nil
        pending?.fail(failure)
        pending = nil
    }
}

/// Completes `done` when the TLS handshake of a new connection ends: with success, or with the
/// error that ended it (a certificate refused either way, the server closing, no answer within
/// the connect timeout).
final class TLSHandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let done: EventLoopPromise<Void>
    private let timeout: TimeAmount

    init(done: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.done = done
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let done = done
        let task = context.eventLoop.scheduleTask(in: timeout) { done.fail(ChannelError.connectTimeout(.zero)) }
        done.futureResult.whenComplete { _ in task.cancel() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { done.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// A short reason for a failed connect, e.g. `Connection refused`, instead of NIO's nested dump.
func describeConnectError(_ error: any Error) -> String {
    if let connectionError = error as? NIOConnectionError {
        if let failure = connectionError.connectionErrors.first {
            return describeConnectError(failure.error)
        }
        if let dnsError = connectionError.dnsAAAAError ?? connectionError.dnsAError {
            return "cannot resolve host: \(dnsError)"
        }
    }
    if let ioError = error as? IOError {
        return String(cString: strerror(ioError.errnoCode))
    }
    if case ChannelError.connectTimeout = error {
        return "connect timed out"
    }
    if case ChannelError.eof = error {
        return "the server closed the connection"
    }
    if let reason = tlsFailureReason(error) {
        return reason
    }
    return "\(error)"
}

/// A client connection to one endpoint that carries one request at a time.
struct RESPConnection: Sendable {
    let endpoint: KVEndpoint
    let channel: any Channel

    /// Connects, or throws a definite `.unreachable` error (nothing was sent).
    static func connect(
        to endpoint: KVEndpoint,
        group: any EventLoopGroup,
        limits: RESPLimits,
        timeout: Duration,
        tls: NIOSSLContext? = nil
    ) async throws(KVClientError) -> RESPConnection {
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
                        ByteToMessageHandler(RESPReplyDecoder(limits: limits)), RESPClientHandler())
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            throw KVClientError(.unreachable, "cannot connect: \(describeConnectError(error))", endpoint: endpoint)
        }
        // Over TLS, a connection is ready once its handshake succeeded: a refused certificate
        // is a definite failure to connect (nothing was sent), not a request lost after sending.
        if tls != nil {
            do {
                try await TLSClient.handshake(on: channel)
            } catch {
                throw KVClientError(.unreachable, error.description, endpoint: endpoint)
            }
        }
        return RESPConnection(endpoint: endpoint, channel: channel)
    }

    /// Sends one request and waits for its reply until `deadline`. Failures after the request
    /// may have left this process are indeterminate; the connection is then closed.
    func send(_ arguments: [[UInt8]], deadline: NIODeadline) async throws(KVClientError) -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        channel.writeAndFlush(RESPClientRequest(arguments: arguments, reply: promise, deadline: deadline))
            .whenFailure { promise.fail($0) }
        do {
            return try await promise.futureResult.get()
        } catch let failure as RESPConnectionFailure {
            throw classify(failure)
        } catch {
            // A failed write may have put some bytes on the wire.
            throw KVClientError(.connectionLost, "connection lost: \(error)", outcome: .indeterminate, endpoint: endpoint)
        }
    }

    private func classify(_ failure: RESPConnectionFailure) -> KVClientError {
        switch failure {
        case .notSent, .busy:
            return KVClientError(.unreachable, "connection closed before sending", outcome: .definite, endpoint: endpoint)
        case .closed:
            return KVClientError(
                .connectionLost, "connection lost after sending", outcome: .indeterminate, endpoint: endpoint)
        case .timedOut:
            return KVClientError(.connectionLost, "no reply in time", outcome: .indeterminate, endpoint: endpoint)
        case .protocolViolation(let error):
            return KVClientError(.protocolViolation, error.message, outcome: .indeterminate, endpoint: endpoint)
        }
    }

    /// Closes the connection; errors are irrelevant as nothing more will be sent.
    func close() {
        channel.close(promise: nil)
    }
}
