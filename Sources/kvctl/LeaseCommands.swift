import ArgumentParser
import KVProtocol

struct LeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease",
        abstract: "Grant, renew, revoke and inspect leases.",
        subcommands: [Grant.self, KeepAlive.self, Revoke.self, TTL.self]
    )

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a lease of TTL seconds; prints its id.")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument(help: "Time to live in seconds (at least the server's minimum).") var ttl: String

        func run() async throws {
            let ttl = try parseUnsigned(ttl, "TTL")
            try await withClient(cluster, timeout: deadline.duration) { client, _ in
                Output.line(String(try expectInteger(try await client.write(["LEASE", "GRANT", String(ttl)]), "LEASE GRANT")))
            }
        }
    }

    struct KeepAlive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keepalive", abstract: "Renew lease ID once; prints the TTL granted again (seconds).")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String

        func run() async throws {
            let id = try parseUnsigned(id, "ID")
            try await withClient(cluster, timeout: deadline.duration) { client, _ in
                // Renewing twice is harmless, so a keepalive is retried without a session.
                let reply = try await client.request(["LEASE", "KEEPALIVE", String(id)], idempotent: true)
                Output.line(String(try expectInteger(reply, "LEASE KEEPALIVE")))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke lease ID: its keys are deleted and its locks released.")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String

        func run() async throws {
            let id = try parseUnsigned(id, "ID")
            try await withClient(cluster, timeout: deadline.duration) { client, _ in
                _ = try await client.write(["LEASE", "REVOKE", String(id)])
                Output.line("OK")
            }
        }
    }

    struct TTL: AsyncParsableCommand {
        /// Milliseconds as seconds with three decimals (`1.500`).
        static func seconds(_ millis: Int64) -> String {
            let whole = millis / 1000, fraction = millis % 1000
            return "\(whole)." + String(repeating: "0", count: 3 - String(fraction).count) + String(fraction)
        }

        static let configuration = CommandConfiguration(
            commandName: "ttl", abstract: "Print lease ID's remaining and granted time to live, in seconds (as `grant` takes them).")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String

        func run() async throws {
            let id = try parseUnsigned(id, "ID")
            try await withClient(cluster, timeout: deadline.duration) { client, _ in
                let reply = try await client.request(["LEASE", "TTL", String(id)], idempotent: true)
                guard case .array(let parts) = reply, parts.count == 2,
                    case .integer(let remaining) = parts[0], case .integer(let granted) = parts[1]
                else { throw CLIError("unexpected reply to LEASE TTL: \(reply)") }
                Output.line("remaining=\(Self.seconds(remaining))s granted=\(Self.seconds(granted))s")
            }
        }
    }
}

struct LeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader", abstract: "Leadership operations.", subcommands: [Transfer.self])

    struct Transfer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hand leadership to node ID and wait until it leads.")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String

        func run() async throws {
            let timeout = try deadline.duration
            let until = ContinuousClock.now + timeout
            try await withClient(cluster, timeout: timeout) { client, nodes in
                // Starting a transfer twice is harmless, so it is retried like a read.
                _ = try await client.request(["LEADER", "TRANSFER", id], idempotent: true)
                while ContinuousClock.now < until {
                    let infos = await NodeInfo.collect(client: client, nodes: nodes, timeout: .milliseconds(500))
                    if infos.contains(where: { $0.fields["node_id"] == id && $0.fields["role"] == "leader" }) {
                        Output.line("node \(id) is the leader")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                throw CLIError("leadership transfer to node \(id) started but did not complete within \(deadline.timeout)s")
            }
        }
    }
}
