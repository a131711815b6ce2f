public import NIOCore
public import NIOSSL
import NIOPosix

/// An async kvd client over SwiftNIO that finds the leader, follows `-NOTLEADER` redirects and
/// retries across endpoints within a deadline, keeping track of whether a failed request may
/// have taken effect (docs/PROTOCOL.md, "Errors").
///
/// - `request(_:idempotent:timeout:)` sends a command to the leader. Definite failures
///   (unreachable node, `-NOTLEADER`) are always retried elsewhere; indeterminate ones
///   (`-TIMEOUT`, `-UNAVAILABLE`, connection lost after sending) only when `idempotent` is true.
/// - `write(_:timeout:)` wraps a write in this client's session (`SESSION id seq ...`) and
///   retries it with the same sequence number, so it takes effect exactly once.
/// - `request(_:at:timeout:)` talks to one endpoint, without redirects (e.g. `INFO` per node).
///
/// Call `close()` when done. Event loop threads come from `eventLoopGroup` (by default NIO's
/// process-wide singleton, whose threads need no shutdown), so a client leaks no threads.
public actor KVClient {
    /// Settings of a client, each with a default.
    public struct Configuration: Sendable {
        /// Nodes to try, in order, until the leader is found.
        public var endpoints: [KVEndpoint]
        /// Default overall deadline of one logical request, retries included.
        public var requestTimeout: Duration = .seconds(10)
        /// Longest wait for one reply on one connection before it counts as lost.
        public var attemptTimeout: Duration = .seconds(3)
        /// Longest wait for a TCP connection.
        public var connectTimeout: Duration = .seconds(1)
        /// First pause after a failed attempt (e.g. `-NOTLEADER unknown` during an election).
        public var backoffInitial: Duration = .milliseconds(25)
        /// Longest pause between attempts; keeps failover latency low.
        public var backoffMax: Duration = .milliseconds(100)
        /// Idle connections kept per endpoint for reuse.
        public var idleConnectionsPerEndpointMax = 4
        /// Limits on replies.
        public var limits = RESPLimits()
        /// Whether each new connection asks for `-NOTLEADER` redirects (`CLIENT REDIRECT ON`,
        /// docs/PROTOCOL.md "Followers"), so that this client finds the leader and talks to it
        /// directly, one hop shorter than a follower forwarding for it. Off by default: a
        /// follower then serves the request itself. A server without the command answers an
        /// error, which is ignored (it redirects anyway).
        public var asksForRedirects = false
        /// When set, a request ends early once every endpoint has refused connections (nothing
        /// listens on any of them) for this long, instead of retrying until its deadline: what a
        /// command-line tool wants when the cluster is not running. `nil` (the default) retries
        /// until the deadline, which rides out a whole cluster restarting.
        public var nothingListeningGrace: Duration?
        /// When set, each new connection authenticates first (`AUTH user password`); a refusal
        /// (`-WRONGPASS`) ends the request at once, definite.
        public var credentials: ClientCredentials?
        /// When set, connections use TLS with this context (see `KVClient.tlsContext`).
        public var tls: NIOSSLContext?

        /// A configuration for `endpoints` with default settings.
        public init(endpoints: [KVEndpoint]) {
            self.endpoints = endpoints
        }
    }

    /// This client's settings.
    public let configuration: Configuration
    let group: any EventLoopGroup
    private var idle: [KVEndpoint: [RESPConnection]] = [:]
    /// The endpoint that last answered as leader; tried first.
    private var leaderHint: KVEndpoint?
    var session: ClientSession?
    var sessionGate = AsyncGate()

    /// A client for `configuration`, running on `eventLoopGroup` (default: NIO's singleton group).
    public init(
        configuration: Configuration,
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) {
        precondition(!configuration.endpoints.isEmpty, "KVClient needs at least one endpoint")
        self.configuration = configuration
        self.group = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
    }

    /// Closes all idle connections. Requests still running finish on their own connections.
    public func close() {
        for connections in idle.values {
            for connection in connections { connection.close() }
        }
        idle = [:]
    }

    /// Sends `arguments` to one endpoint, once, without redirects or retries. An error reply
    /// is returned as `.error`, not thrown, so callers can show any node's answer.
    public func request(
        _ arguments: [[UInt8]],
        at endpoint: KVEndpoint,
        timeout: Duration? = nil
    ) async throws(KVClientError) -> RESPValue {
        let deadline = ContinuousClock.now + (timeout ?? configuration.attemptTimeout)
        return try await attempt(arguments, at: endpoint, deadline: deadline)
    }

    /// Text-argument convenience for `request(_:at:timeout:)`.
    public func request(
        _ arguments: [String],
        at endpoint: KVEndpoint,
        timeout: Duration? = nil
    ) async throws(KVClientError) -> RESPValue {
        try await request(arguments.map { Array($0.utf8) }, at: endpoint, timeout: timeout)
    }

    /// Sends `arguments` to the leader, following redirects and retrying within `timeout`
    /// (default `configuration.requestTimeout`). Error replies are thrown as `.errorReply`.
    ///
    /// - Parameters:
    ///   - idempotent: whether the command may be repeated after an indeterminate failure
    ///     (reads, keepalives, or commands that are idempotent by design).
    ///   - attemptTimeout: how long one attempt may wait for its reply (default
    ///     `configuration.attemptTimeout`); longer for blocking commands such as `LOCK ... WAIT`.
    public func request(
        _ arguments: [[UInt8]],
        idempotent: Bool,
        timeout: Duration? = nil,
        attemptTimeout: Duration? = nil
    ) async throws(KVClientError) -> RESPValue {
        var retry = RetryState(deadline: ContinuousClock.now + (timeout ?? configuration.requestTimeout))
        return try await routed(arguments, idempotent: idempotent, attemptTimeout: attemptTimeout, retry: &retry)
    }

    /// Text-argument convenience for `request(_:idempotent:timeout:)`.
    public func request(
        _ arguments: [String],
        idempotent: Bool,
        timeout: Duration? = nil,
        attemptTimeout: Duration? = nil
    ) async throws(KVClientError) -> RESPValue {
        try await request(
            arguments.map { Array($0.utf8) }, idempotent: idempotent, timeout: timeout, attemptTimeout: attemptTimeout)
    }

    /// One attempt on one endpoint, on a pooled connection; an attempt never outlives `deadline`
    /// nor `configuration.attemptTimeout` unless the deadline is later on purpose (blocking
    /// commands pass their own).
    func attempt(
        _ arguments: [[UInt8]],
        at endpoint: KVEndpoint,
        deadline: ContinuousClock.Instant
    ) async throws(KVClientError) -> RESPValue {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else {
            throw KVClientError(.deadlineExceeded, "deadline exceeded", outcome: .definite, endpoint: endpoint)
        }
        let connection = try await checkOut(endpoint, remaining: remaining)
        do {
            let reply = try await connection.send(arguments, deadline: NIODeadline.now() + TimeAmount(remaining))
            checkIn(connection)
            return reply
        } catch {
            connection.close()
            throw error
        }
    }

    private func checkOut(_ endpoint: KVEndpoint, remaining: Duration) async throws(KVClientError) -> RESPConnection {
        while var connections = idle[endpoint], let connection = connections.popLast() {
            idle[endpoint] = connections
            if connection.channel.isActive { return connection }
        }
        let connection = try await RESPConnection.connect(
            to: endpoint, group: group, limits: configuration.limits,
            timeout: min(configuration.connectTimeout, remaining), tls: configuration.tls)
        if let credentials = configuration.credentials {
            let reply: RESPValue
            do {
                reply = try await connection.send(credentials.authRequest, deadline: NIODeadline.now() + TimeAmount(remaining))
            } catch {
                connection.close()
                throw KVClientError(
                    .unreachable, "connection failed while authenticating: \(error.message)", outcome: .definite, endpoint: endpoint)
            }
            if case .error(let line) = reply {
                connection.close()
                throw KVClientError(.errorReply, line, outcome: .definite, code: String(line.prefix { $0 != " " }), endpoint: endpoint)
            }
        }
        guard configuration.asksForRedirects else { return connection }
        do {
            // Any reply will do: OK, or an error from a server that always redirects.
            _ = try await connection.send(Self.redirectRequest, deadline: NIODeadline.now() + TimeAmount(remaining))
        } catch {
            connection.close()
            // The request itself was not sent on this connection: definitely not applied.
            throw KVClientError(
                .unreachable, "connection failed while asking for redirects: \(error.message)", outcome: .definite,
                endpoint: endpoint)
        }
        return connection
    }

    /// `CLIENT REDIRECT ON`, sent first on each new connection when `asksForRedirects` is set.
    static let redirectRequest: [[UInt8]] = ["CLIENT", "REDIRECT", "ON"].map { Array($0.utf8) }

    private func checkIn(_ connection: RESPConnection) {
        var connections = idle[connection.endpoint, default: []]
        guard connection.channel.isActive, connections.count < configuration.idleConnectionsPerEndpointMax else {
            connection.close()
            return
        }
        connections.append(connection)
        idle[connection.endpoint] = connections
    }

    /// The endpoint to try first: the last known leader, else the first configured one.
    var firstTarget: KVEndpoint {
        leaderHint ?? configuration.endpoints[0]
    }

    /// The configured endpoint after `endpoint` (wrapping), for when it is down or leaderless.
    func nextEndpoint(after endpoint: KVEndpoint) -> KVEndpoint {
        let endpoints = configuration.endpoints
        guard let index = endpoints.firstIndex(of: endpoint) else { return endpoints[0] }
        return endpoints[(index + 1) % endpoints.count]
    }

    func rememberLeader(_ endpoint: KVEndpoint?) {
        leaderHint = endpoint
    }
}
