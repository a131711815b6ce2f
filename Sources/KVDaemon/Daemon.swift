import KVProtocol
import KVStore
public import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import RaftCore
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// Assembles one kvd node from its configuration and runs it until SIGTERM/SIGINT: the peer
/// transport, the Raft loop, the client server and the metrics server, as one `ServiceGroup`.
public enum Daemon {
    public struct Options: Sendable {
        public var configPath: String
        public var nodeID: UInt64
        public var dataDirectory: String?
        public var logLevel: Logger.Level
        /// `--force-new-cluster`: make this node a one-node cluster first (`ForceNewCluster`).
        public var forceNewCluster: Bool
        /// `--join`: start with no bootstrap membership (docs/CONFIGURATION.md, "Joining a cluster").
        public var join: Bool

        public init(
            configPath: String, nodeID: UInt64, dataDirectory: String?, logLevel: Logger.Level, forceNewCluster: Bool = false,
            join: Bool = false
        ) {
            self.configPath = configPath
            self.nodeID = nodeID
            self.dataDirectory = dataDirectory
            self.logLevel = logLevel
            self.forceNewCluster = forceNewCluster
            self.join = join
        }
    }

    /// Runs the node. Every start-up problem (bad configuration, unknown id, a port in use, a
    /// data directory of another cluster, a corrupt database) throws an error whose description
    /// is one line naming it.
    public static func run(_ options: Options) async throws {
        let config = try ClusterConfig.load(path: options.configPath)
        let id = NodeID(options.nodeID)
        let me = try config.requireNode(id)
        let users = try UserDirectory.load(settings: config.settings, configFile: options.configPath)
        let clientTLS = try ClientTLS.context(for: me, settings: config.settings, configFile: options.configPath)
        let peerTLS = try PeerTLS.load(settings: config.settings, configFile: options.configPath)
        let secret = try config.settings.peerSecretFile.map { path throws(ConfigError) in
            try PeerSecret.load(path: path, configFile: options.configPath)
        }
        // Before anything starts (and logs), and before the data directory is created: a port in
        // use ends the start with one line and leaves nothing behind.
        try await checkAddressesFree(me)
        let directory = try DataDirectory(
            path: options.dataDirectory ?? DataDirectory.defaultPath(for: id), clusterID: config.clusterID, nodeID: id)
        try checkDatabasesOpen(directory)
        let level = options.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "kvd")
        logger[metadataKey: "node"] = "\(id)"
        if options.forceNewCluster {
            let outcome = try ForceNewCluster.rewrite(logPath: directory.raftLogPath, id: id, bootstrap: config.membership)
            ForceNewCluster.report(outcome, id: id, logger: logger)
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let metrics = DaemonMetrics()
        let group = MultiThreadedEventLoopGroup.singleton

        if let path = config.settings.peerSecretFile, PeerSecret.isExposed(path: path, configFile: options.configPath) {
            logger.warning("the cluster secret file \(path) is readable by other users: chmod 600 it")
        }
        let transport = try await PeerTransport.start(
            config: config, selfID: id, group: group, logger: logger, secret: secret, tls: peerTLS)
        let files = DatabaseFiles(directory: directory)
        let loop = makeLoop(
            config: config, me: me, join: options.join, files: files, transport: transport, metrics: metrics, logger: logger)
        let clientServer = try await bindClientServer(
            config: config, me: me, users: users, tls: clientTLS, loop: loop.handle, group: group, metrics: metrics,
            logger: logger)
        let checkpointer = WALCheckpointer(
            databases: [
                WALCheckpointer.Database(path: files.logPath, fileGuard: files.logGuard, progress: files.logProgress),
                WALCheckpointer.Database(path: files.statePath, fileGuard: files.stateGuard, progress: files.stateProgress),
            ],
            logger: logger)
        var services: [any Service] = [transport, loop, clientServer, checkpointer]
        if let address = me.metrics {
            let handle = loop.handle
            services.append(
                MetricsServer(
                    host: address.host, port: address.port, registry: registry, group: group, logger: logger,
                    health: { await healthJSON(handle) }, readiness: { await readiness(handle) }))
        }
        transport.deliverInbound(to: loop.handle)
        let sampler = Task {
            while !Task.isCancelled {
                metrics.record(transport.counters())
                try? await Task.sleep(for: .seconds(1))
            }
        }
        defer { sampler.cancel() }
        let authenticator = clientServer.authenticator
        let reloader = Task { [configPath = options.configPath, logger] in
            for await _ in await UnixSignalsSequence(trapping: .sighup) {
                reloadUsers(configPath: configPath, into: authenticator, logger: logger)
            }
        }
        defer { reloader.cancel() }
        logger.info("kvd starting", metadata: ["cluster": "\(config.clusterID)", "data": "\(directory.path)"])
        if options.join {
            logger.info(
                "joining: no bootstrap membership; this node takes part once the leader adds it",
                metadata: ["peer": "\(me.peer)", "client": "\(me.client)"])
        }
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
        withExtendedLifetime(directory) {}
    }

    /// The node's two databases, with the guards that keep the background checkpointer off a
    /// file while it is swapped.
    struct DatabaseFiles: Sendable {
        var logPath: String
        var statePath: String
        let logGuard = DatabaseFileGuard()
        let stateGuard = DatabaseFileGuard()
        let logProgress = WALProgress()
        let stateProgress = WALProgress()

        init(directory: DataDirectory) {
            logPath = directory.raftLogPath
            statePath = directory.stateMachinePath
        }

        /// The loop's connections never checkpoint (0): a checkpoint inside a commit copies WAL
        /// pages and fsyncs the database in the loop, and after a long snapshot read it copied
        /// hundreds of megabytes (a 1.3 s iteration that cost a leadership at 10 M keys). The
        /// `WALCheckpointer` does it from its own thread.
        static let loopAutocheckpointPages: Int32 = 0
    }

    static func makeLoop(
        config: ClusterConfig, me: ClusterNode, join: Bool, files: DatabaseFiles, transport: PeerTransport,
        metrics: DaemonMetrics, logger: Logger
    ) -> RaftLoop {
        var settings = config.driverSettings
        settings.logWALProgress = files.logProgress
        settings.stateWALProgress = files.stateProgress
        settings.peerCounters = { transport.counters() }
        settings.membersChanged = { members in
            transport.updatePeers(members.compactMap { ClusterNode(member: $0.id, peer: $0.peer, client: $0.client, metrics: $0.metrics) })
        }
        let driverSettings = settings
        let raftConfiguration = config.raftConfiguration(for: me.id)
        let limits = config.kvLimits
        // A joining node knows no membership until its log or a snapshot names one (thesis §4.1):
        // it never campaigns and commits nothing on its own. Once either names one, the
        // bootstrap membership is not used again, with or without --join.
        let membership = join ? ClusterMembership(voters: []) : config.membership
        let logPath = files.logPath, statePath = files.statePath, stateGuard = files.stateGuard
        let stateCacheKibibytes = config.settings.stateCacheBytes / 1024
        let clock = ContinuousClock()
        let start = clock.now
        return RaftLoop(
            tickMillis: config.tickMillis, handOverWaitMillis: config.settings.electionTimeoutMillis,
            commandsMax: config.settings.loopCommandsMax, logger: logger,
            sendToPeers: { transport.send($0) }
        ) { send in
            let storage: SQLiteLogStorage
            let machine: KVStateMachine
            do {
                var logOptions = SQLiteLogStorage.Options()
                logOptions.walAutocheckpointPages = DatabaseFiles.loopAutocheckpointPages
                storage = try SQLiteLogStorage(path: logPath, options: logOptions)
                var stateOptions = SQLiteConnection.Options()
                // The state machine may lose its last transactions in a power cut: it then
                // re-applies them from the log, which is always fsynced first (and before the log
                // is compacted, the driver makes the state durable).
                stateOptions.synchronous = .normal
                stateOptions.walAutocheckpointPages = DatabaseFiles.loopAutocheckpointPages
                stateOptions.cacheKibibytes = Int32(clamping: stateCacheKibibytes)
                machine = try KVStateMachine(database: try SQLiteConnection(path: statePath, options: stateOptions), limits: limits)
                machine.fileGuard = stateGuard
            } catch let error as StorageError {
                throw DaemonError.storage(error)
            }
            return try RaftDriver(
                configuration: raftConfiguration, bootstrap: membership, settings: driverSettings, storage: storage,
                machine: machine, seed: UInt64.random(in: 1...UInt64.max), metrics: metrics, send: send,
                monotonicMillis: {
                    let elapsed = (clock.now - start).components
                    return UInt64(elapsed.seconds) * 1000 + UInt64(elapsed.attoseconds / 1_000_000_000_000_000)
                },
                wallMillis: { wallClockMillis() })
        }
    }

    static func bindClientServer(
        config: ClusterConfig, me: ClusterNode, users: UserDirectory, tls: NIOSSLContext?, loop: RaftLoopHandle,
        group: any EventLoopGroup, metrics: DaemonMetrics, logger: Logger
    ) async throws -> ClientServer {
        var limits = ClientServer.Limits()
        limits.request = RESPLimits(bulkBytesMax: config.settings.requestBytesMax)
        limits.pipelineRequestsMax = config.settings.pipelineRequestsMax
        limits.connectionsMax = config.settings.clientConnectionsMax
        limits.settings = config.settings.parameters
        limits.users = users
        limits.partialRequestTimeoutMillis = config.settings.clientPartialRequestTimeoutMillis
        limits.replyBytesMax = config.settings.clientReplyBytesMax
        if let tls, let address = me.clientTLS { limits.tls = (address, tls) }
        limits.servesPlainClients = me.servesPlainClients
        for node in config.nodes { if let address = node.clientTLS { limits.tlsAddresses[node.id.rawValue] = "\(address)" } }
        do {
            return try await ClientServer.bind(
                host: me.client.host, port: me.client.port, limits: limits, loop: loop, group: group, metrics: metrics,
                logger: logger)
        } catch let error as ClientTLSBindError {
            throw DaemonError.startup(error.description)
        } catch {
            throw DaemonError.startup("cannot listen for clients on \(me.client): \(socketErrorText(error))")
        }
    }

    /// `SIGHUP`: reads the users again (`requirepass` from the configuration file, and the
    /// `users-file`) and puts them in place; a file that does not load leaves the old users in
    /// place and says why. Other settings take a restart.
    static func reloadUsers(configPath: String, into authenticator: Authenticator, logger: Logger) {
        do {
            let config = try ClusterConfig.load(path: configPath)
            let users = try UserDirectory.load(settings: config.settings, configFile: configPath)
            authenticator.reload(users)
            logger.info("users reloaded on SIGHUP", metadata: ["users": "\(users.users.count)"])
        } catch {
            logger.error("users not reloaded on SIGHUP, the previous ones stay in place: \(error)")
        }
    }

    /// Binds and closes every address `me` listens on, so that a port in use is reported before
    /// any service starts (one line naming the problem); the real binds follow.
    static func checkAddressesFree(_ me: ClusterNode) async throws {
        var addresses = [("peers", me.peer)]
        if me.servesPlainClients { addresses.append(("clients", me.client)) }
        if let metrics = me.metrics { addresses.append(("metrics", metrics)) }
        if let clientTLS = me.clientTLS { addresses.append(("TLS clients", clientTLS)) }
        for (purpose, address) in addresses {
            do {
                let channel = try await probeBind(host: address.host, port: address.port, group: MultiThreadedEventLoopGroup.singleton)
                try await channel.close()
            } catch {
                throw DaemonError.startup("cannot listen for \(purpose) on \(address): \(socketErrorText(error))")
            }
        }
    }

    /// A listening socket on `host:port` that accepts nothing, for `checkAddressesFree`. A client
    /// or peer that connects in the instant it exists waits in the kernel's backlog and is reset
    /// when it closes, so it retries; a probe that accepted (the default) would leave such a
    /// connection open with nobody serving it, and the client would wait for a reply forever.
    static func probeBind(host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in channel.close() }
            .bind(host: host, port: port).get()
    }

    /// Opens and closes both databases, so that a damaged file (not a database, wrong schema) is
    /// reported in one line before any service starts. The Raft loop opens them for real.
    static func checkDatabasesOpen(_ directory: DataDirectory) throws {
        do {
            _ = try SQLiteLogStorage(path: directory.raftLogPath)
            _ = try KVStateMachine(database: try SQLiteConnection(path: directory.stateMachinePath))
        } catch let error as StorageError {
            throw DaemonError.storage(error)
        } catch {
            throw DaemonError.startup("\(error)")
        }
    }

    /// `/health`: the node's view, as JSON.
    static func healthJSON(_ loop: RaftLoopHandle) async -> String {
        guard case .verbatim(let text) = await loop.submit(.info(sections: ["kvd"]), localReads: true) else {
            return "{\"has_leader\":false,\"error\":\"node is shutting down\"}"
        }
        return healthJSON(info: text)
    }

    /// The `/ready` verdict, from the node's `INFO kvd`.
    static func readiness(_ loop: RaftLoopHandle) async -> Readiness {
        guard case .verbatim(let text) = await loop.submit(.info(sections: ["kvd"]), localReads: true) else {
            return Readiness(reasons: ["node is shutting down"])
        }
        return Readiness(info: text)
    }

    /// The `/health` body for an `INFO` reply: every field, numbers as JSON numbers, plus
    /// `has_leader`.
    static func healthJSON(info: String) -> String {
        let fields = InfoFields.parse(info)
        let members = fields.map { field in
            let isNumber = !field.value.isEmpty && field.value.allSatisfy(\.isASCII) && field.value.allSatisfy(\.isNumber)
            return "\"\(jsonEscaped(field.name))\":" + (isNumber ? field.value : "\"\(jsonEscaped(field.value))\"")
        }
        let hasLeader = fields.contains { $0.name == "leader_id" && $0.value != "0" && !$0.value.isEmpty }
        return "{\"has_leader\":\(hasLeader)," + members.joined(separator: ",") + "}"
    }

    static func jsonEscaped(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20: escaped += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Wall-clock milliseconds since 1970, stamped into commands by the leader.
    static func wallClockMillis() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}
