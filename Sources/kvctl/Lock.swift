import ArgumentParser
import KVProtocol

#if canImport(Glibc)
import Glibc
#endif

struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Acquire lock NAME with a lease kept alive in the background.",
        discussion: """
            Without a command: prints the fencing token as soon as the lock is held, keeps the lease \
            alive, and releases the lock on SIGINT/SIGTERM (exit 0). With a command (after --): runs it \
            with KVD_LOCK_NAME, KVD_LOCK_TOKEN and KVD_LEASE_ID in its environment, sends it SIGTERM \
            (SIGKILL 5 s later) if the lease is lost, releases the lock when it ends and exits with its \
            status.
            """
    )

    /// Seconds between SIGTERM and SIGKILL when the lease is lost under a running command.
    static let killGraceSeconds = 5
    /// Deadline of the requests around the wait (grant, revoke).
    static let requestTimeout: Duration = .seconds(10)

    @OptionGroup var cluster: ClusterOptions
    @Option(help: "Lease time to live in seconds (at least the server's minimum).") var ttl: Int = 10
    @Option(help: "Seconds to wait for the lock before giving up (default: wait indefinitely).") var timeout: Double?
    @Argument var name: String
    @Argument(parsing: .postTerminator, help: "Command to run while holding the lock.") var command: [String] = []

    func validate() throws {
        guard ttl >= 1, ttl <= 7 * 86_400 else { throw ValidationError("--ttl must be between 1 and 604800 seconds") }
        if let timeout, !(timeout > 0 && timeout <= 86_400 * 365) {
            throw ValidationError("--timeout must be a positive number of seconds")
        }
    }

    func run() async throws {
        try await withClient(cluster, timeout: Self.requestTimeout) { client, _ in
            let (events, continuation) = AsyncStream.makeStream(of: LockEvent.self)
            // Watch signals before anything is granted, so an interrupt always releases.
            let signals = SignalWatcher(continuation)
            defer { signals.cancel() }
            let grantedAt = ContinuousClock.now
            let lease = try expectInteger(try await client.write(["LEASE", "GRANT", String(ttl)]), "LEASE GRANT")
            let holder = LockHolder(client: client, name: name, lease: lease, ttl: .seconds(ttl), events: continuation)
            let keeper = Task { await holder.keepAlive(from: grantedAt) }
            let acquirer = Task { await holder.acquire(waitSeconds: timeout) }
            defer {
                keeper.cancel()
                acquirer.cancel()
            }
            var supervisor = LockSupervisor(holder: holder, command: command)
            let status = try await supervisor.run(events)
            if status != 0 { throw ExitCode(status) }
        }
    }
}

/// Consumes lock events and decides what happens: print the token or start the command, forward
/// signals, stop the command when the lease is lost, and always release on the way out.
struct LockSupervisor {
    let holder: LockHolder
    let command: [String]
    var token: Int64?
    var child: ChildProcess?
    var leaseLost = false

    init(holder: LockHolder, command: [String]) {
        self.holder = holder
        self.command = command
    }

    /// Returns the exit status, or throws a `CLIError` for a one-line failure.
    mutating func run(_ events: AsyncStream<LockEvent>) async throws -> Int32 {
        for await event in events {
            switch event {
            case .acquired(let granted):
                token = granted
                try await held(token: granted)
            case .acquireFailed(let error):
                await holder.release()
                throw error
            case .signal(let number):
                if let child {
                    child.send(number)  // the command decides; kvctl releases when it ends
                    continue
                }
                try await holder.releaseOrFail()
                if token == nil { throw CLIError("interrupted while waiting for lock \(holder.name)", status: 128 + number) }
                return 0
            case .leaseLost(let reason):
                try await lost(reason)
            case .childExited:
                guard let child else { continue }
                let status = child.reap()
                await holder.release()
                return status
            case .graceExpired:
                child?.send(SIGKILL)
            }
        }
        throw CLIError("internal error: lock event stream ended")
    }

    private mutating func held(token: Int64) async throws {
        guard !command.isEmpty else {
            Output.line(String(token))
            return
        }
        do {
            let spawned = try ChildProcess.spawn(
                command,
                adding: [
                    "KVD_LOCK_NAME": holder.name, "KVD_LOCK_TOKEN": String(token), "KVD_LEASE_ID": String(holder.lease),
                ])
            child = spawned
            spawned.watchExit(holder.events)
        } catch {
            await holder.release()
            throw error
        }
    }

    private mutating func lost(_ reason: String) async throws {
        guard !leaseLost else { return }
        leaseLost = true
        guard let child else {
            await holder.release()
            throw CLIError(token == nil ? "lease lost while waiting for lock \(holder.name): \(reason)" : "lost lock \(holder.name): \(reason)")
        }
        Output.error("kvctl: lost lock \(holder.name): \(reason); stopping the command (SIGTERM, SIGKILL after \(Lock.killGraceSeconds) s)")
        child.send(SIGTERM)
        let events = holder.events
        Task {
            try? await Task.sleep(for: .seconds(Lock.killGraceSeconds))
            events.yield(.graceExpired)
        }
    }
}
