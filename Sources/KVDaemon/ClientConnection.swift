#if canImport(Glibc)
import Glibc
#endif
import KVProtocol
import KVStore
import Logging
import Metrics
import NIOCore
import Synchronization

/// One client connection, on its event loop (docs/PROTOCOL.md): requests are parsed as they are
/// decoded, connection-level commands answered here, everything else posted to the Raft loop.
/// Replies are written strictly in request order; all replies that are ready go out in one write
/// and one flush, whether they were answered here (once per socket read) or came back from the
/// Raft loop (once per loop iteration, see `ReplyCourier`).
///
/// Requests run concurrently (a pipeline of writes shares Raft round trips and fsyncs), except
/// where a pipeline switches between reads and writes: there the request waits until every
/// earlier one is answered, so the pipeline behaves as if run one command at a time (Redis
/// semantics): a ReadIndex taken before an earlier write committed could miss it, and a write
/// could overtake an earlier read.
///
/// Back-pressure: with `pipelineRequestsMax` requests unanswered, the connection stops reading
/// its socket (the client's TCP window fills) until replies catch up.
final class ClientConnection: ChannelDuplexHandler {
    typealias InboundIn = [[UInt8]]
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What every connection of one server shares.
    struct Shared: Sendable {
        var loop: RaftLoopHandle
        var metrics: DaemonMetrics
        var pipelineRequestsMax: Int
        var connectionsMax: Int
        var connections: ClientChannels
        var courier: ReplyCourier
        /// The node's settings, for `CONFIG GET`.
        var settings: [ConfigParameter] = []
        /// A request begun must be complete within this (`client-partial-request-timeout-ms`).
        var partialRequestTimeout = TimeAmount.milliseconds(30_000)
        /// Reply bytes written but not yet taken by the client's socket above which the connection
        /// is closed (`client-reply-bytes-max`).
        var replyBytesMax = 64 << 20
        /// Each node's `client-tls=` address, for redirects given to TLS connections.
        var tlsAddresses: [UInt64: String] = [:]
        /// Checks `AUTH`; when users are configured, a connection runs nothing else before it.
        var authenticator = Authenticator(users: UserDirectory(), metrics: DaemonMetrics(), logger: Logger(label: "kvd"))
    }

    /// A decoded request, parsed once.
    struct Request {
        var arguments: [[UInt8]]
        var command: Result<ClientCommand, CommandError>

        init(_ arguments: [[UInt8]]) {
            self.arguments = arguments
            command = Result { () throws(CommandError) in try CommandParser.parse(arguments) }
        }
    }

    /// One request's place in the reply order.
    struct Slot {
        /// The protocol the connection spoke when the request came (a reply to a request sent
        /// before `HELLO 3` is still RESP2).
        var version: RESPVersion = .resp2
        var reply: Reply?
        /// When it was posted to the Raft loop, and the timer its latency goes to.
        var started: ContinuousClock.Instant?
        var timer: Timer?
        /// A `WATCH`: the keys whose modification indexes its reply carries.
        var watching: [[UInt8]]?
    }

    /// A `MULTI` being queued.
    struct Transaction {
        var operations: [KVOperation] = []
        var styles: [ClientCommand.WriteReplyStyle] = []
        /// A command was refused while queueing: `EXEC` answers `-EXECABORT`.
        var failed = false
    }

    /// The most commands one transaction may queue.
    static let transactionCommandsMax = 10_000

    private let shared: Shared
    private var context: ChannelHandlerContext?
    /// This connection, for the courier's task on its event loop.
    private var bound: NIOLoopBound<ClientConnection>?
    /// Replies in request order: `slots[0]` is the oldest request not yet written, whose
    /// sequence number is `firstSequence`.
    private var slots = CircularBuffer<Slot>(initialCapacity: 16)
    private var firstSequence: UInt64 = 0
    /// Requests that may not start yet (behind a read/write switch), in arrival order.
    private var deferred = CircularBuffer<Request>()
    /// `READONLY` (reads served locally) and `CLIENT REDIRECT` (no forwarding on a follower).
    private var routing = CommandRouting()
    /// RESP2 until `HELLO 3`.
    private var version = RESPVersion.resp2
    /// `CLIENT SETNAME` / `HELLO ... SETNAME`.
    private var name: [UInt8]?
    /// `CLIENT ID`: unique among this server's connections.
    private var id: Int64 = 0
    /// Whether the previous request that went to the Raft loop was a read.
    private var lastWasRead: Bool?
    /// QUIT or a protocol error: close once everything before it is written.
    private var closing = false
    /// A read of the socket held back by back-pressure.
    private var readHeld = false
    /// The latency timer of the last command name seen (most connections repeat one command).
    private var lastTimer: (name: [UInt8], timer: Timer)?
    /// Between `MULTI` and `EXEC`/`DISCARD`.
    private var transaction: Transaction?
    /// Keys watched since the last `EXEC`, `DISCARD` or `UNWATCH`, with the modification index
    /// each had when watched (the first `WATCH` of a key counts).
    private var watched: [WatchedKey] = []
    /// The user this connection authenticated as (nil: none yet, or authentication is off), as
    /// the users were at `userGeneration` (see `Authenticator.reload`).
    private var user: User?
    private var userGeneration: UInt64 = 0
    /// An `AUTH` is being checked: later requests wait, since what they may do depends on it.
    private var authPending = false
    /// Closes the connection if the request begun is not complete in time (slow clients hold a
    /// connection slot each; see `client-partial-request-timeout-ms`).
    private var partialTimer: Scheduled<Void>?

    /// Whether this connection came through the TLS listener: its redirects name TLS addresses.
    private let overTLS: Bool

    init(shared: Shared, overTLS: Bool = false) {
        self.shared = shared
        self.overTLS = overTLS
    }

    /// A redirect for a TLS connection names the leader's TLS address (unknown if it has none).
    private func forTLS(_ reply: Reply) -> Reply {
        guard overTLS, case .error(let line) = reply, line.hasPrefix("NOTLEADER ") else { return reply }
        let words = line.split(separator: " ")
        guard words.count >= 3, let id = UInt64(words[1]) else { return reply }
        return .error("NOTLEADER \(id) \(shared.tlsAddresses[id] ?? "unknown")")
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        bound = NIOLoopBound(self, eventLoop: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let (open, id) = shared.connections.add(context.channel)
        self.id = id
        shared.metrics.connectedClients.record(open)
        if open > shared.connectionsMax {
            slots.append(Slot(version: version, reply: .err("max number of clients reached")))
            closing = true
            writeReady()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partialTimer?.cancel()
        partialTimer = nil
        shared.metrics.connectedClients.record(shared.connections.remove(context.channel))
        context.fireChannelInactive()
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partialTimer?.cancel()
        partialTimer = nil
        guard !closing else { return }
        let request = Request(unwrapInboundIn(data))
        if deferred.isEmpty, canStart(request) {
            start(request)
        } else {
            deferred.append(request)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is RESPRequestDecoder.PartialRequest else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard partialTimer == nil, !closing, let bound else { return }
        partialTimer = context.eventLoop.scheduleTask(in: shared.partialRequestTimeout) {
            bound.value.partialRequestTimedOut()
        }
    }

    /// The client began a request and did not finish it in time: tell it, and close.
    private func partialRequestTimedOut() {
        partialTimer = nil
        guard !closing else { return }
        deferred.removeAll()
        let millis = shared.partialRequestTimeout.nanoseconds / 1_000_000
        slots.append(Slot(version: version, reply: .err("request not completed within \(millis) ms (client-partial-request-timeout-ms)")))
        closing = true
        writeReady()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client reads again: write what is ready, start what waited, read more.
        if context.channel.isWritable { writeReady() }
        context.fireChannelWritabilityChanged()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writeReady()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? RESPProtocolError else {
            context.close(promise: nil)
            return
        }
        // The client broke the protocol: answer what came before, tell it why, and close.
        deferred.removeAll()
        slots.append(Slot(version: version, reply: .err(error.message)))
        closing = true
        writeReady()
    }

    /// Whether `arguments` may start now: anything may, except a request to the Raft loop that
    /// switches between reads and writes while earlier requests are unanswered.
    private func canStart(_ request: Request) -> Bool {
        // A client that does not read its replies gets no new work until its socket drains.
        guard !authPending, context?.channel.isWritable != false else { return false }
        guard let lastWasRead, !slots.isEmpty, case .success(let command) = request.command else { return true }
        switch command {
        // EXEC carries the watched keys' versions: it waits for every earlier reply (a WATCH's).
        case .connection(.exec): return false
        case .quit, .readOnly, .ping, .echo, .emptyArray, .connection: return true
        default: return transaction != nil || Self.isRead(command) == lastWasRead
        }
    }

    static func isRead(_ command: ClientCommand) -> Bool {
        if case .info = command { return true }
        return command.isRead
    }

    /// Parses one request and starts it; connection-level commands are answered at once.
    private func start(_ request: Request) {
        let sequence = firstSequence + UInt64(slots.count)
        let command: ClientCommand
        switch request.command {
        case .success(let parsed): command = parsed
        case .failure(let error):
            transaction?.failed = true
            slots.append(Slot(version: version, reply: mayRunUnauthenticated(nil) ? .err(error.message) : Self.noAuth))
            return
        }
        if let denial = denial(command, request) {
            transaction?.failed = true
            slots.append(Slot(version: version, reply: denial))
            return
        }
        if case .connection(.auth(let credentials)) = command {
            authenticate(credentials, sequence: sequence, hello: nil)
            return
        }
        if case .connection(.hello(let requested, let clientName, let credentials?)) = command, shared.authenticator.isEnabled {
            if let requested, RESPVersion(rawValue: Int(clamping: requested)) == nil {
                slots.append(Slot(version: version, reply: .error("NOPROTO unsupported protocol version")))
                return
            }
            authenticate(credentials, sequence: sequence, hello: Hello(version: requested, clientName: clientName))
            return
        }
        if transaction != nil, let reply = queue(command) {
            slots.append(Slot(version: version, reply: reply))
            return
        }
        if case .connection(.exec(let session)) = command {
            guard let queued = transaction else {
                slots.append(Slot(version: version, reply: .err("EXEC without MULTI")))
                return
            }
            transaction = nil
            let watches = watched
            watched = []
            guard !queued.failed else {
                slots.append(Slot(version: version, reply: .error("EXECABORT Transaction discarded because of previous errors.")))
                return
            }
            post(
                .write(.transaction(operations: queued.operations, watches: watches), session: session, reply: .transaction(queued.styles)),
                request: request, sequence: sequence)
            return
        }
        switch command {
        case .quit:
            slots.append(Slot(version: version, reply: .ok))
            closing = true
            deferred.removeAll()
        case .readOnly(let enabled):
            routing.localReads = enabled
            slots.append(Slot(version: version, reply: .ok))
        case .ping(let message): slots.append(Slot(version: version, reply: message.map { .bulk($0) } ?? .simple("PONG")))
        case .echo(let message): slots.append(Slot(version: version, reply: .bulk(message)))
        case .emptyArray: slots.append(Slot(version: version, reply: .array([])))
        case .connection(let request):
            let reply = answer(request)
            slots.append(Slot(version: version, reply: reply))
        default:
            post(command, request: request, sequence: sequence)
        }
    }

    /// Sends a command to the Raft loop; its reply fills the slot at `sequence`.
    private func post(_ command: ClientCommand, request: Request, sequence: UInt64) {
        lastWasRead = Self.isRead(command)
        var slot = Slot(version: version, reply: nil, started: .now, timer: timer(for: request.arguments))
        if case .watch(let keys) = command { slot.watching = keys }
        slots.append(slot)
        guard let bound else { return }
        let courier = shared.courier
        let responder = Responder { reply in courier.carry(reply, for: sequence, to: bound) }
        if case .refused = shared.loop.mailbox.post(.command(command, routing: routing, responder)) {
            complete(sequence, with: shared.loop.refusal())
        }
    }

    /// Inside `MULTI`: queues a write or a key read (`+QUEUED`) or refuses the command, which
    /// aborts the transaction. Nil for the commands that act at once (`EXEC`, `DISCARD`, `QUIT`,
    /// `RESET`), which `start` handles.
    private func queue(_ command: ClientCommand) -> Reply? {
        let queued: (KVOperation, ClientCommand.WriteReplyStyle)
        switch command {
        case .connection(.exec), .connection(.discard), .connection(.reset), .quit: return nil
        case .connection(.multi): return .err("MULTI calls can not be nested")
        case .watch: return .err("WATCH inside MULTI is not allowed")
        case .write(let operation, nil, let style): queued = (operation, style)
        case .read(let read): queued = (.read(read), .standard)
        case .ping(let message): queued = (.read(.echo(message)), .standard)
        case .echo(let message): queued = (.read(.echo(message)), .standard)
        default:
            transaction?.failed = true
            return .err("this command cannot run inside MULTI on kvd (only key reads and writes can; docs/PROTOCOL.md)")
        }
        guard let count = transaction?.operations.count, count < Self.transactionCommandsMax else {
            transaction?.failed = true
            return .err("a transaction may queue at most \(Self.transactionCommandsMax) commands")
        }
        transaction?.operations.append(queued.0)
        transaction?.styles.append(queued.1)
        return .simple("QUEUED")
    }

    /// Answers a command about the connection itself, changing its state.
    private func answer(_ request: ConnectionCommand) -> Reply {
        switch request {
        case .hello(let requested, let clientName, _):
            if let requested {
                guard let chosen = RESPVersion(rawValue: Int(clamping: requested)) else {
                    return .error("NOPROTO unsupported protocol version")
                }
                version = chosen
            }
            if let clientName { name = clientName.isEmpty ? nil : clientName }
            let leading = shared.loop.leading.value.load(ordering: .relaxed)
            return .map([
                .bulk(Array("server".utf8)), .bulk(Array("kvd".utf8)),
                .bulk(Array("version".utf8)), .bulk(Array(Self.redisCompatibleVersion.utf8)),
                .bulk(Array("proto".utf8)), .integer(Int64(version.rawValue)),
                .bulk(Array("id".utf8)), .integer(id),
                .bulk(Array("mode".utf8)), .bulk(Array("standalone".utf8)),
                .bulk(Array("role".utf8)), .bulk(Array((leading ? "master" : "replica").utf8)),
                .bulk(Array("modules".utf8)), .array([]),
            ])
        case .setName(let newName):
            name = newName.isEmpty ? nil : newName
            return .ok
        case .getName: return .bulk(name)
        case .id: return .integer(id)
        case .setInfo: return .ok
        case .redirect(let enabled):
            routing.redirects = enabled
            return .ok
        case .select(let index): return index == 0 ? .ok : .err("DB index is out of range")
        case .commandCount: return .integer(Int64(CommandParser.commandNames.count))
        case .multi:
            transaction = Transaction()
            return .ok
        case .discard:
            guard transaction != nil else { return .err("DISCARD without MULTI") }
            transaction = nil
            watched = []
            return .ok
        case .unwatch:
            watched = []
            return .ok
        case .exec: return .err("EXEC without MULTI")
        case .functionFlush: return .ok
        case .time:
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            return .array([.bulk(Array(String(now.tv_sec).utf8)), .bulk(Array(String(now.tv_nsec / 1000).utf8))])
        case .auth:
            return .err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
        case .reset:
            transaction = nil
            watched = []
            if shared.authenticator.isEnabled { user = nil }
            name = nil
            version = .resp2
            routing = CommandRouting()
            return .simple("RESET")
        case .configGet(let patterns):
            let parameters = Self.configParameters(connectionsMax: shared.connectionsMax) + shared.settings
            var matched: [Reply] = []
            for parameter in parameters where patterns.contains(where: { Glob.matches($0, Array(parameter.name.utf8)) }) {
                matched += [.bulk(Array(parameter.name.utf8)), .bulk(Array(parameter.value.utf8))]
            }
            return .map(matched)
        }
    }

    // MARK: Authentication

    static let noAuth = Reply.error("NOAUTH Authentication required.")
    static let wrongPass = Reply.error("WRONGPASS invalid username-password pair or user is disabled.")

    /// Whether `command` may run before the connection has authenticated: only the handshake,
    /// `AUTH`, `QUIT` and `RESET` (nil: a request that did not parse).
    private func mayRunUnauthenticated(_ command: ClientCommand?) -> Bool {
        refreshUser()
        guard shared.authenticator.isEnabled, user == nil else { return true }
        switch command {
        case .connection(.auth)?, .connection(.hello(_, _, _?))?, .connection(.reset)?, .quit?: return true
        default: return false
        }
    }

    /// After the users were reloaded: this connection's user as defined now (its permissions may
    /// have changed); a user that was removed must authenticate again.
    private func refreshUser() {
        guard let current = user else { return }
        let generation = shared.authenticator.generation
        guard generation != userGeneration else { return }
        userGeneration = generation
        user = shared.authenticator.current(named: current.name)
    }

    /// `-NOAUTH` before authentication, `-NOPERM` for what the user may not do; nil if allowed.
    private func denial(_ command: ClientCommand, _ request: Request) -> Reply? {
        guard mayRunUnauthenticated(command) else {
            if case .connection(.hello) = command {
                return .error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
            }
            return Self.noAuth
        }
        guard let user else { return nil }
        let name = String(ClientServer.metricName(request.arguments).prefix(64))
        return user.denial(command.accessNeed, command: name).map { .error($0) }
    }

    /// A `HELLO` that authenticates: answered as a plain `HELLO` once the credentials pass.
    struct Hello: Sendable {
        var version: Int64?
        var clientName: [UInt8]?
    }

    /// Checks `credentials` off the event loop; the reply (`+OK`, or `hello`'s answer, on success;
    /// `-WRONGPASS` otherwise) fills the slot at `sequence`, and later requests wait until then.
    private func authenticate(_ credentials: Credentials, sequence: UInt64, hello: Hello?) {
        slots.append(Slot(version: version, reply: nil))
        guard let context, let bound else { return }
        authPending = true
        let host = context.channel.remoteAddress?.ipAddress ?? "unknown"
        // The users as of now: a reload while the password is checked makes the user found again.
        let generation = shared.authenticator.generation
        shared.authenticator.authenticate(
            user: credentials.user, password: credentials.password, host: host, on: context.eventLoop
        ).whenComplete { result in
            let connection = bound.value
            connection.authPending = false
            if case .success(.accepted(let user)) = result {
                connection.user = user
                connection.userGeneration = generation
                let reply = hello.map { connection.answer(.hello(version: $0.version, clientName: $0.clientName, credentials: nil)) }
                connection.complete(sequence, with: reply ?? .ok)
            } else {
                connection.complete(sequence, with: Self.wrongPass)
            }
            connection.writeReady()
        }
    }

    /// What `CONFIG GET` shows: the Redis parameters that tools read, with kvd's answers (every
    /// write is in a log fsynced on a majority before it is acknowledged, there is one database,
    /// idle connections are never closed).
    static func configParameters(connectionsMax: Int) -> [ConfigParameter] {
        [
            ConfigParameter("appendfsync", "always"), ConfigParameter("appendonly", "yes"), ConfigParameter("databases", "1"),
            ConfigParameter("maxclients", "\(connectionsMax)"), ConfigParameter("save", ""), ConfigParameter("timeout", "0"),
        ]
    }

    /// The Redis version whose client-visible behaviour kvd follows, for `HELLO`.
    static let redisCompatibleVersion = "7.2.0"

    /// The latency timer for this request's command.
    private func timer(for arguments: [[UInt8]]) -> Timer {
        if let lastTimer, let first = arguments.first, Self.equalIgnoringCase(first, lastTimer.name) {
            return lastTimer.timer
        }
        let name = ClientServer.metricName(arguments)
        let timer = shared.metrics.commandTimer(named: name)
        // Not cached for SESSION/FENCED, whose label is the command they wrap.
        if let first = arguments.first, Self.equalIgnoringCase(first, Array(name.utf8)) { lastTimer = (first, timer) }
        return timer
    }

    static func equalIgnoringCase(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        for index in a.indices where a[index] | 0x20 != b[index] | 0x20 { return false }
        return true
    }

    // MARK: Replies

    /// A reply from the Raft loop, handed over by `ReplyCourier` on this event loop; the courier
    /// calls `writeReady` once it has handed over all of this connection's replies.
    func complete(_ sequence: UInt64, with reply: Reply) {
        guard sequence >= firstSequence, sequence - firstSequence < UInt64(slots.count) else { return }
        let position = slots.index(slots.startIndex, offsetBy: Int(sequence - firstSequence))
        slots[position].reply = forTLS(reply)
        if let keys = slots[position].watching, case .array(let versions?) = reply, versions.count == keys.count {
            for (key, version) in zip(keys, versions) where !watched.contains(where: { $0.key == key }) {
                guard case .integer(let modIndex) = version else { continue }
                watched.append(WatchedKey(key: key, modIndex: UInt64(clamping: modIndex)))
            }
            slots[position].reply = .ok
        }
        if let started = slots[position].started, let timer = slots[position].timer {
            let elapsed = (ContinuousClock.now - started).components
            timer.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
    }

    /// Writes every reply that is next in line with one flush, then starts deferred requests,
    /// resumes reading if there is room, and closes if the connection is done.
    func writeReady() {
        guard let context else { return }
        while true {
            if slots.first?.reply != nil {
                var buffer = context.channel.allocator.buffer(capacity: 256)
                while let slot = slots.first, let reply = slot.reply {
                    slots.removeFirst()
                    firstSequence += 1
                    buffer.writeReply(reply, slot.version)
                }
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
                // Only a socket that stopped taking bytes can hold many: checked then, off the
                // usual path.
                if !context.channel.isWritable,
                    let pending = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
                    pending > shared.replyBytesMax
                {
                    // Like Redis's client-output-buffer-limit: a client this far behind is closed
                    // rather than allowed to hold the node's memory.
                    shared.metrics.clientsClosedForReplies.increment()
                    closing = true
                    deferred.removeAll()
                    context.close(promise: nil)
                    return
                }
            }
            guard startDeferred() else { break }
        }
        if closing, slots.isEmpty {
            context.close(promise: nil)
            return
        }
        if readHeld, hasRoom, context.channel.isWritable {
            readHeld = false
            context.read()
        }
    }

    /// Starts the deferred requests that may start now; true if any answered at once.
    private func startDeferred() -> Bool {
        var answered = false
        while let next = deferred.first, !closing, canStart(next) {
            deferred.removeFirst()
            start(next)
            answered = answered || slots.first?.reply != nil
        }
        return answered
    }

    private var hasRoom: Bool { slots.count + deferred.count < shared.pipelineRequestsMax }

    func read(context: ChannelHandlerContext) {
        guard hasRoom, context.channel.isWritable else {
            readHeld = true
            return
        }
        context.read()
    }
}

/// The open client connections of one server: counted for the connection limit and closed
/// together when the server stops.
final class ClientChannels: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let lastID = Atomic<Int64>(0)

    /// Adds `channel`; returns how many are open now and the connection's `CLIENT ID`.
    func add(_ channel: any Channel) -> (open: Int, id: Int64) {
        let id = lastID.add(1, ordering: .relaxed).newValue
        return channels.withLock { channels in
            channels[ObjectIdentifier(channel)] = channel
            return (channels.count, id)
        }
    }

    /// Removes `channel`; returns how many are open now.
    func remove(_ channel: any Channel) -> Int {
        channels.withLock { channels in
            channels[ObjectIdentifier(channel)] = nil
            return channels.count
        }
    }

    func closeAll() {
        for channel in channels.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}
