import ArgumentParser
import KVDaemon
import KVProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `kvd --config FILE --id ID [--data-dir DIR] [--force-new-cluster]`, or
/// `kvd --config NEW.conf --id ID --restore-from BACKUP [--data-dir DIR]` (builds the data
/// directory from a backup and exits).
@main
struct KVD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd",
        abstract: "A Raft-replicated key-value store with leases, locks and fencing tokens.",
        discussion: """
            Every node of a cluster runs with the same cluster.conf. The data directory defaults to \
            data/ID. SIGTERM stops gracefully: a leader hands leadership over first.
            """,
        version: KVDVersion.current)

    @Option(name: .long, help: "The cluster configuration file (see docs/CONFIGURATION.md).")
    var config: String

    @Option(name: .long, help: "This node's id, as in a 'node' line of the configuration.")
    var id: UInt64

    @Option(name: .customLong("data-dir"), help: "Where this node keeps its data (default: data/ID).")
    var dataDir: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("restore-from"),
        help: "Build this node's data directory of a NEW cluster from a backup file (kvctl snapshot save), then exit.")
    var restoreFrom: String?

    @Flag(
        name: .customLong("force-new-cluster"),
        help: "LAST RESORT when a majority is lost for good: make this node a one-node cluster with its data, then start.")
    var forceNewCluster = false

    @Flag(
        help: """
            Join a running cluster instead of bootstrapping one: start with no membership, listen on this \
            node's 'node' line in --config, and wait to be added (kvctl member add), learning the log from the leader.
            """)
    var join = false

    func run() async throws {
        // Every file kvd creates (the SQLite databases and their journals included) is readable
        // by its owner only: they hold every key.
        umask(0o077)
        if let restoreFrom {
            do {
                let outcome = try Restore.run(Restore.Options(configPath: config, nodeID: id, backupPath: restoreFrom, dataDirectory: dataDir))
                print("kvd: \(outcome)")
                return
            } catch {
                var stderr = StandardError()
                print("kvd: \(error)", to: &stderr)
                Glibc.exit(1)
            }
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            Self.exit(withError: ValidationError("unknown log level '\(logLevel)'"))
        }
        do {
            try await Daemon.run(Daemon.Options(
                    configPath: config, nodeID: id, dataDirectory: dataDir, logLevel: level, forceNewCluster: forceNewCluster,
                    join: join))
        } catch {
            // One clear line, then a non-zero exit.
            var stderr = StandardError()
            print("kvd: \(error)", to: &stderr)
            Glibc.exit(1)
        }
    }
}

/// Standard error as a `TextOutputStream`.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        // Written straight to descriptor 2: the C `stderr` global is not concurrency-safe in Swift 6.
        var remaining = Array(string.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            remaining = remaining.dropFirst(written)
        }
    }
}

