#if canImport(Glibc)
import Glibc
#endif
import KVProtocol
import NIOCore
import NIOPosix
import NIOSSL

/// Socket-level details of peer connections.
enum PeerSocket {
    /// `TCP_USER_TIMEOUT` (Linux, RFC 5482): the kernel aborts a connection whose sent data stays
    /// unacknowledged this long, instead of retransmitting into a back-off of minutes. Set to
    /// `peer-stall-timeout-ms`, behind the probes that catch the same and more (a paused peer
    /// whose kernel still acknowledges).
    static let userTimeout = ChannelOptions.Types.SocketOption(
        level: NIOBSDSocket.OptionLevel(rawValue: CInt(IPPROTO_TCP)),
        name: NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT)))

    static func userTimeoutValue(_ settings: ClusterSettings) -> SocketOptionValue {
        SocketOptionValue(settings.peerStallTimeoutMillis)
    }

    /// Closes `channel` by this node's own decision: a refusal frame first, with `reason`, so the
    /// other side logs why and does not take the close for a vanished process.
    static func close(_ channel: any Channel, goodbye reason: String) {
        channel.writeAndFlush(PeerOutboundFrame.refusal(reason)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Whether a connection error means the other end vanished (`ECONNRESET`, `EPIPE`): the
    /// kernel of a killed process resets connections that still held unread data. Over TLS, a
    /// connection closed without TLS's own goodbye (close_notify) is the same evidence.
    static func isAbruptEnd(_ error: any Error) -> Bool {
        if let error = error as? NIOSSLError, case .uncleanShutdown = error { return true }
        guard let error = error as? IOError else { return false }
        return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE
    }

    /// Whether a failed connect means nobody listens at the address (`ECONNREFUSED`).
    static func isRefusal(_ error: any Error) -> Bool {
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        if let error = error as? NIOConnectionError {
            return !error.connectionErrors.isEmpty
                && error.connectionErrors.allSatisfy { isRefusal($0.error) }
        }
        return false
    }
}

/// One line for an error on a peer connection; a failed TLS handshake says what to check.
func peerConnectionErrorText(_ error: any Error) -> String {
    if let reason = tlsFailureReason(error) {
        return "TLS handshake failed (\(reason)): both nodes need peer TLS on, with certificates that chain to each other's peer-tls-ca-file"
    }
    return "\(error)"
}

/// One line for a socket error: the system's own words for an `IOError` ("Address already in
/// use"), not NIO's description with the name of its internal function.
func socketErrorText(_ error: any Error) -> String {
    guard let error = error as? IOError else { return "\(error)" }
    return String(cString: strerror(error.errnoCode)) + " (errno \(error.errnoCode))"
}
