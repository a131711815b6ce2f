import ArgumentParser
import KVProtocol

/// `kvctl member list | add | promote | remove` (README "Change the membership"; the RESP
/// commands are in docs/PROTOCOL.md, "Membership"). Every one goes to the leader.
struct MemberCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "member", abstract: "Show or change the cluster's membership, one server at a time.",
        subcommands: [ListMembers.self, Add.self, Promote.self, Remove.self])

    /// How long kvctl waits between two tries while another membership change is pending.
    static let pendingRetryDelay = Duration.milliseconds(200)

    /// The refusal of a change while another is pending (only one at a time is allowed, and a new
    /// leader allows none before its first entry commits).
    static let pendingRefusal = "another membership change is pending"
    /// The refusal of a promotion while the learner is behind.
    static let behindRefusal = "has not caught up yet"

    /// Sends a change to the leader, retrying while it is refused with a message containing one of
    /// `retryingOn` until the deadline. A change is not repeated after an indeterminate failure:
    /// `member list` tells whether it happened.
    static func change(
        _ arguments: [String], cluster: ClusterOptions, deadline: TimeoutOption, retryingOn: [String] = [pendingRefusal]
    ) async throws {
        let timeout = try deadline.duration
        let until = ContinuousClock.now + timeout
        try await withClient(cluster, timeout: timeout) { client, _ in
            while true {
                do {
                    _ = try await client.request(arguments, idempotent: false, timeout: until - ContinuousClock.now)
                    return
                } catch let error as KVClientError where retryingOn.contains(where: error.message.contains) {
                    guard ContinuousClock.now + pendingRetryDelay < until else { throw error }
                    try await Task.sleep(for: pendingRetryDelay)
                }
            }
        }
    }

    struct ListMembers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "One row per member: id, addresses, voter or learner, the leader's match index, reachable from the leader.")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption

        static let columns = ["ID", "PEER", "CLIENT", "METRICS", "ROLE", "MATCH", "REACHABLE"]

        func run() async throws {
            let reply = try await withClient(cluster, timeout: try deadline.duration) { client, _ in
                try await client.request(["MEMBER", "LIST"], idempotent: true)
            }
            guard case .array(let members) = reply else { throw CLIError("unexpected reply to MEMBER LIST: \(reply)") }
            var rows = [Self.columns]
            for member in members {
                guard case .array(let fields) = member, fields.count == Self.columns.count else {
                    throw CLIError("unexpected reply to MEMBER LIST: \(member)")
                }
                rows.append(
                    fields.enumerated().map { index, field in
                        let text: String
                        switch field {
                        case .integer(let value): text = index == 5 && value < 0 ? "-" : "\(value)"
                        default: text = field.text ?? "-"
                        }
                        return text.isEmpty ? "-" : text
                    })
            }
            Output.line(Output.table(rows))
        }

    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record node ID's addresses and add it as a learner (start it first with kvd --join).")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String
        @Option(help: "The node's peer address, host:port.") var peer: String
        @Option(help: "The node's client address, host:port.") var client: String
        @Option(help: "The node's metrics address, host:port.") var metrics: String?

        func run() async throws {
            _ = try parseUnsigned(id, "ID")
            try await MemberCommand.change(
                ["MEMBER", "ADD", id, peer, client] + (metrics.map { [$0] } ?? []), cluster: cluster, deadline: deadline)
            Output.line("node \(id) added as a learner; promote it once 'kvctl member list' shows it caught up")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make learner ID a voter; refused until it has caught up with the leader.",
            discussion: """
                With --wait, kvctl retries until the learner has caught up or --timeout passes \
                (raise it for a large state, e.g. --timeout 600).
                """)
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Flag(help: "Retry while the learner is still catching up, until --timeout.")
        var wait = false
        @Argument var id: String

        func run() async throws {
            _ = try parseUnsigned(id, "ID")
            let retryingOn = [MemberCommand.pendingRefusal] + (wait ? [MemberCommand.behindRefusal] : [])
            try await MemberCommand.change(["MEMBER", "PROMOTE", id], cluster: cluster, deadline: deadline, retryingOn: retryingOn)
            Output.line("node \(id) is a voter")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove member ID (a dead one too); removing the leader hands leadership over first.")
        @OptionGroup var cluster: ClusterOptions
        @OptionGroup var deadline: TimeoutOption
        @Argument var id: String

        func run() async throws {
            _ = try parseUnsigned(id, "ID")
            try await MemberCommand.change(["MEMBER", "REMOVE", id], cluster: cluster, deadline: deadline)
            Output.line("node \(id) removed; it can be stopped")
        }
    }
}
