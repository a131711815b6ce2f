import Dispatch
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Everything the `lock` command waits for, from any source, in one stream.
enum LockEvent: Sendable {
    case acquired(token: Int64)
    case acquireFailed(CLIError)
    case signal(Int32)
    case leaseLost(String)
    case childExited
    case graceExpired
}

/// A command run while holding a lock: spawned with `posix_spawnp`, inheriting stdio.
struct ChildProcess: Sendable {
    let pid: pid_t

    /// Spawns `argv` with `environment` added to kvctl's own, SIGINT/SIGTERM restored to their
    /// defaults (kvctl ignores them to handle them itself) and no blocked signals.
    static func spawn(_ argv: [String], adding environment: [String: String]) throws -> ChildProcess {
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in cArguments + cEnvironment { free(pointer) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var pid = pid_t()
        let result = posix_spawnp(&pid, argv[0], nil, &attributes, cArguments, cEnvironment)
        guard result == 0 else {
            throw CLIError("cannot run \(argv[0]): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Reports `.childExited` once the child has exited, without reaping it, so its pid cannot
    /// be reused (and wrongly signalled) before `reap()` collects the status.
    func watchExit(_ events: AsyncStream<LockEvent>.Continuation) {
        let pid = self.pid
        DispatchQueue.global().async {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            events.yield(.childExited)
        }
    }

    /// Collects the exit status: the command's own, or 128 + signal if a signal killed it.
    func reap() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    func send(_ signal: Int32) {
        kill(pid, signal)
    }
}

/// Turns SIGINT and SIGTERM into events. The default actions are disabled first, so the lock
/// is always released on the way out rather than left to expire.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(_ events: AsyncStream<LockEvent>.Continuation) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { events.yield(.signal(number)) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
