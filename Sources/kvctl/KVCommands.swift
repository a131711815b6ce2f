import ArgumentParser
import KVProtocol

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set KEY to VALUE (exactly once).")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var key: String
    @Argument var value: String

    func run() async throws {
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            _ = try await client.write(["SET", key, value])
            Output.line("OK")
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the value of KEY and a newline; a missing key exits non-zero.")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var key: String

    func run() async throws {
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            let reply = try await client.request(["GET", key], idempotent: true)
            guard let value = reply.bytes else {
                if reply.isNull { throw CLIError("key not found: \(key)") }
                throw CLIError("unexpected reply to GET: \(reply)")
            }
            Output.stdout(value + [10])
        }
    }
}

struct Del: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete KEY; prints how many keys were deleted (0 or 1).")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var key: String

    func run() async throws {
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            Output.line(String(try expectInteger(try await client.write(["DEL", key]), "DEL")))
        }
    }
}

struct Cas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set KEY to NEW only if it holds OLD; exits non-zero if it did not.")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var key: String
    @Argument var old: String
    @Argument var new: String

    func run() async throws {
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            let swapped = try expectInteger(try await client.write(["CAS", key, old, new]), "CAS")
            guard swapped == 1 else { throw CLIError("cas failed: \(key) does not hold the expected value") }
            Output.line("OK")
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List keys starting with PREFIX in byte order, one 'key<TAB>value' line each.")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var prefix: String
    @Option(help: "Most keys to list (the server caps it).") var limit: Int?

    func run() async throws {
        var command = ["LIST", prefix]
        if let limit {
            guard limit > 0 else { throw CLIError("--limit must be positive") }
            command += ["LIMIT", String(limit)]
        }
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            let reply = try await client.request(command, idempotent: true)
            guard case .array(let items) = reply, items.count % 2 == 0 else {
                throw CLIError("unexpected reply to LIST: \(reply)")
            }
            var out: [UInt8] = []
            for pair in stride(from: 0, to: items.count, by: 2) {
                out += (items[pair].bytes ?? []) + [9] + (items[pair + 1].bytes ?? []) + [10]
            }
            Output.stdout(out)
        }
    }
}

struct Unlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release lock NAME held with TOKEN.")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var name: String
    @Argument var token: String

    func run() async throws {
        let token = try parseUnsigned(token, "TOKEN")
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            _ = try await client.write(["UNLOCK", name, String(token)])
            Output.line("OK")
        }
    }
}

struct Fence: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check TOKEN against fence register NAME, raising it; -STALE if a higher token was seen.")
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var deadline: TimeoutOption
    @Argument var name: String
    @Argument var token: String

    func run() async throws {
        let token = try parseUnsigned(token, "TOKEN")
        try await withClient(cluster, timeout: deadline.duration) { client, _ in
            Output.line(String(try expectInteger(try await client.write(["FENCE", name, String(token)]), "FENCE")))
        }
    }
}
