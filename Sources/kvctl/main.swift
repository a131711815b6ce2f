import ArgumentParser
import KVProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// kvctl: the command-line client of kvd.
///
/// Exit status: 0 on success; 1 on a failure that had no effect (or a missing key, a failed
/// CAS); 2 on a usage error; 3 when a write may or may not have taken effect; a `lock` with a
/// command exits with the command's status. Every failure prints exactly one line on stderr.
struct KVCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvctl",
        abstract: "Command-line client for a kvd cluster.",
        discussion: """
            Writes are sent through an exactly-once session, so a retry after a failover applies at most once. \
            Every command takes --timeout SECONDS after its name (default 10): how long to keep retrying across \
            nodes; for `lock` it is the wait for the lock.
            """,
        version: KVDVersion.current,
        subcommands: [
            Put.self, Get.self, Del.self, Cas.self, List.self, LeaseCommand.self, Lock.self, Unlock.self,
            Fence.self, Status.self, LeaderCommand.self, SnapshotCommand.self, MemberCommand.self, Bench.self, Passwd.self,
        ]
    )

    // Declared here too so that `kvctl --endpoints ... COMMAND` works: ArgumentParser decodes
    // each command of the chain from the whole command line. `--timeout` is not: `lock` gives it
    // another meaning (the wait for the lock), so it follows the subcommand.
    @OptionGroup var cluster: ClusterOptions
}

/// How long kvctl retries while every node refuses connections before it gives up.
let kvctlNothingListeningGrace = Duration.seconds(2)

/// Runs `body` with a client for the configured cluster and closes it afterwards, turning a
/// `KVClientError` into a one-line `CLIError` that says whether the command may have applied.
func withClient<Result>(
    _ cluster: ClusterOptions,
    timeout: Duration,
    _ body: (KVClient, [ConfiguredNode]) async throws -> Result
) async throws -> Result {
    let nodes = try cluster.resolveNodes()
    var configuration = KVClient.Configuration(endpoints: nodes.map(\.endpoint))
    configuration.requestTimeout = timeout
    // kvctl goes to the leader itself (following -NOTLEADER) rather than through a follower.
    configuration.asksForRedirects = true
    // Every node refusing connections for a while means the cluster is not running: say so then
    // rather than at the deadline (a node restarting refuses for a moment only).
    configuration.nothingListeningGrace = kvctlNothingListeningGrace
    configuration.credentials = try cluster.credentials()
    configuration.tls = try cluster.tlsContext()
    let client = KVClient(configuration: configuration)
    do {
        let result = try await body(client, nodes)
        await client.close()
        return result
    } catch let error as KVClientError {
        await client.close()
        throw CLIError(describe(error), status: error.outcome == .indeterminate ? CLIError.indeterminate : CLIError.failure)
    } catch {
        await client.close()
        throw error
    }
}

/// One line for a client error; an indeterminate one says so, since the user must check.
func describe(_ error: KVClientError) -> String {
    var text = error.description
    if error.code == "NOAUTH" { text += " (give --user and --password-file, or set KVCTL_USER and KVCTL_PASSWORD)" }
    switch error.outcome {
    case .definite: return text
    case .indeterminate: return text + " (the command may or may not have taken effect)"
    }
}

/// The reply's integer, or a clear error naming the command.
func expectInteger(_ reply: RESPValue, _ command: String) throws -> Int64 {
    guard case .integer(let value) = reply else {
        throw CLIError("unexpected reply to \(command): \(reply)")
    }
    return value
}

/// Parses a decimal id or token argument.
func parseUnsigned(_ text: String, _ what: String) throws -> UInt64 {
    guard let value = UInt64(text) else { throw CLIError("\(what) must be a non-negative integer, got '\(text)'") }
    return value
}

/// Calls the async `run()` of a parsed command (generic, so the async overload is chosen).
func runAsync<Command: AsyncParsableCommand>(_ command: inout Command) async throws {
    try await command.run()
}

/// Moves a `--timeout` given before the subcommand (`kvctl --timeout 5 get k`) to after it,
/// where the subcommand's own option reads it: ArgumentParser would otherwise hand it to the
/// root only. It goes before a `--` so that it never reaches a `lock` command's argv.
func hoistingTimeout(_ arguments: [String]) -> [String] {
    var leading: [String] = []
    var moved: [String] = []
    var index = 0
    while index < arguments.count, arguments[index].hasPrefix("--"), arguments[index] != "--" {
        let argument = arguments[index]
        let takesValue = !argument.contains("=") && index + 1 < arguments.count
        let group = takesValue ? [argument, arguments[index + 1]] : [argument]
        if argument == "--timeout" || argument.hasPrefix("--timeout=") { moved += group } else { leading += group }
        index += group.count
    }
    var rest = Array(arguments[index...])
    rest.insert(contentsOf: moved, at: rest.firstIndex(of: "--") ?? rest.count)
    return leading + rest
}

do {
    var command = try await KVCtl.asyncParseAsRoot(hoistingTimeout(Array(CommandLine.arguments.dropFirst())))
    if var asyncCommand = command as? any AsyncParsableCommand {
        try await runAsync(&asyncCommand)
    } else {
        try command.run()
    }
    exit(0)
} catch let error as ExitCode {
    // A `lock` command's own exit status: the command already said what it had to.
    exit(error.rawValue)
} catch let error as CLIError {
    Output.error("kvctl: \(error.message)")
    exit(error.status)
} catch let error as KVClientError {
    Output.error("kvctl: \(describe(error))")
    exit(error.outcome == .indeterminate ? CLIError.indeterminate : CLIError.failure)
} catch {
    let code = KVCtl.exitCode(for: error)
    if code == .success {
        // --help and --version print their full text.
        Output.line(KVCtl.fullMessage(for: error))
        exit(0)
    }
    let message = KVCtl.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    Output.error("kvctl: \(message)")
    exit(code.rawValue)
}
