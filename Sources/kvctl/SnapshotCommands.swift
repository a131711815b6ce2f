import ArgumentParser
import KVProtocol
import KVStore

#if canImport(Glibc)
import Glibc
#endif

/// `kvctl snapshot save FILE` and `kvctl snapshot status FILE` (docs/PROTOCOL.md, "Backups").
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Back up the cluster's state to a file, or check such a file.",
        subcommands: [SnapshotSave.self, SnapshotStatus.self])
}

struct SnapshotSave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "save",
        abstract: "Stream a consistent backup from the leader into FILE (written atomically: temporary file, fsync, rename).")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument(help: "The backup file to write.") var file: String

    /// Attempts at one chunk before the backup is abandoned (a lost reply is asked for again).
    static let chunkAttemptsMax = 5

    func run() async throws {
        let timeout = try deadline.duration
        let nodes = try cluster.resolveNodes()
        var configuration = KVClient.Configuration(endpoints: nodes.map(\.endpoint))
        configuration.limits.bulkBytesMax = BackupFormat.chunkBytesMax
        configuration.limits.messageBytesMax = BackupFormat.chunkBytesMax + BackupFormat.headerBytesMax
        let client = KVClient(configuration: configuration)
        do {
            try await save(client, nodes: nodes, timeout: timeout)
            await client.close()
        } catch {
            await client.close()
            throw error
        }
    }

    private func save(_ client: KVClient, nodes: [ConfiguredNode], timeout: Duration) async throws {
        let (leader, id, metadata) = try await Self.begin(client, nodes: nodes, timeout: timeout)
        let writer: BackupFileWriter
        do {
            writer = try BackupFileWriter(path: file, metadata: metadata)
            var sequence: UInt64 = 0
            while true {
                let (chunk, done) = try await Self.chunk(client, leader, id: id, sequence: sequence, timeout: timeout)
                try writer.append(chunk)
                sequence += 1
                if done { break }
            }
            _ = try? await client.request(["SNAPSHOT", "END", String(id)], at: leader, timeout: timeout)
            try writer.finish()
        } catch let error as BackupFileError {
            throw CLIError(error.description)
        }
        Output.line(
            "saved \(file): cluster \(metadata.clusterID), index \(metadata.appliedIndex), term \(metadata.term), "
                + "\(writer.rows) rows in \(writer.chunks) chunks, \(writer.bytesWritten) bytes")
    }

    /// Starts a backup on the leader, looking for it again (until `timeout`) if leadership moved
    /// or the leader is busy with other backups.
    static func begin(
        _ client: KVClient, nodes: [ConfiguredNode], timeout: Duration
    ) async throws -> (leader: KVEndpoint, id: Int64, metadata: BackupMetadata) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let leader = try await findLeader(client, nodes: nodes, deadline: deadline)
            let reply = try? await client.request(["SNAPSHOT", "BEGIN"], at: leader, timeout: timeout)
            if case .array(let fields) = reply, fields.count == 2, case .integer(let id) = fields[0],
                case .bulkString(let header) = fields[1]
            {
                do { return (leader, id, try BackupMetadata.parse(String(decoding: header, as: UTF8.self))) } catch {
                    throw CLIError("the leader \(leader) sent a backup header this kvctl cannot read: \(error)")
                }
            }
            guard ContinuousClock.now < deadline else {
                throw CLIError("the leader \(leader) refused the backup: \(reply.map(describe) ?? "no answer")")
            }
            try await Task.sleep(for: retryPause)
        }
    }

    /// The pause between two attempts to find the leader or start the backup.
    static let retryPause = Duration.milliseconds(200)

    /// Chunk `sequence`, asked again after a lost reply (the node repeats its last chunk).
    static func chunk(
        _ client: KVClient, _ leader: KVEndpoint, id: Int64, sequence: UInt64, timeout: Duration
    ) async throws -> (bytes: [UInt8], done: Bool) {
        var lastFailure = ""
        for _ in 0..<chunkAttemptsMax {
            let reply: RESPValue
            do { reply = try await client.request(["SNAPSHOT", "CHUNK", String(id), String(sequence)], at: leader, timeout: timeout) } catch {
                lastFailure = kvctl.describe(error)
                continue
            }
            guard case .array(let fields) = reply, fields.count == 3, case .integer(let number) = fields[0],
                number == Int64(sequence), case .bulkString(let bytes) = fields[1], case .integer(let done) = fields[2]
            else { throw CLIError("backup chunk \(sequence) refused by \(leader): \(describe(reply))") }
            return (bytes, done == 1)
        }
        throw CLIError("backup chunk \(sequence) from \(leader) failed \(chunkAttemptsMax) times: \(lastFailure)")
    }

    /// The node that calls itself leader, asking every node `INFO` until `deadline`.
    static func findLeader(_ client: KVClient, nodes: [ConfiguredNode], deadline: ContinuousClock.Instant) async throws -> KVEndpoint {
        while true {
            let infos = await NodeInfo.collect(client: client, nodes: nodes, timeout: .seconds(2))
            if let leader = infos.first(where: { $0.role == "leader" }) { return leader.configured.endpoint }
            guard ContinuousClock.now < deadline else { throw CLIError("no node is leader; cannot take a backup") }
            try await Task.sleep(for: retryPause)
        }
    }

    static func describe(_ reply: RESPValue) -> String {
        if case .error(let text) = reply { return text }
        return "unexpected reply \(reply)"
    }
}

struct SnapshotStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Verify a backup file (every checksum, the format, completeness) and print its metadata and counts.")
    @Argument(help: "The backup file to check.") var file: String
    @Flag(help: "Print one JSON object instead of lines.") var json = false

    func run() async throws {
        let reader: BackupFileReader
        do {
            reader = try BackupFileReader(path: file)
            try reader.verifyToEnd()
        } catch {
            throw CLIError(error.description)
        }
        let metadata = reader.metadata
        let fields: [(String, String)] = [
            ("file", file), ("format", "\(BackupFormat.version)"), ("cluster_id", metadata.clusterID),
            ("source_node", "\(metadata.sourceNode)"), ("applied_index", "\(metadata.appliedIndex)"), ("term", "\(metadata.term)"),
            ("voters", Self.ids(metadata.membership.voters.map(\.rawValue))),
            ("learners", Self.ids(metadata.membership.learners.map(\.rawValue))),
            ("created_ms", "\(metadata.createdMillis)"), ("schema_version", "\(metadata.schemaVersion)"),
            ("keys", "\(reader.rowsPerTable["kv_keys"] ?? 0)"), ("leases", "\(reader.rowsPerTable["kv_leases"] ?? 0)"),
            ("locks", "\(reader.rowsPerTable["kv_locks"] ?? 0)"), ("sessions", "\(reader.rowsPerTable["kv_sessions"] ?? 0)"),
            ("rows", "\(reader.rows)"), ("chunks", "\(reader.chunks)"), ("bytes", "\(reader.bytesRead)"),
        ]
        if json {
            let members = fields.map { name, value in
                let isNumber = !value.isEmpty && value.allSatisfy { $0.isASCII && $0.isNumber }
                return "\"\(name)\":" + (isNumber ? value : "\"\(Self.escaped(value))\"")
            }
            Output.line("{" + members.joined(separator: ",") + "}")
        } else {
            Output.line("ok: the backup is complete and every checksum matches")
            for (name, value) in fields { Output.line("\(name): \(value)") }
        }
    }

    static func escaped(_ text: String) -> String {
        text.unicodeScalars.map { scalar in
            switch scalar {
            case "\"": return "\\\""
            case "\\": return "\\\\"
            case _ where scalar.value < 0x20: return "?"
            default: return String(scalar)
            }
        }.joined()
    }

    static func ids(_ ids: [UInt64]) -> String { ids.sorted().map(String.init).joined(separator: ",") }
}
