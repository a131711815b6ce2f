#if canImport(Glibc)
import Glibc
#endif

/// The exit status and combined stdout/stderr of a finished helper command.
struct CommandResult: Sendable {
    var status: Int32
    var output: String
}

/// Runs helper programs (`ip`, `nft`, `iptables`) and starts daemons, with `posix_spawnp`.
///
/// Every call here blocks its thread; async code calls them through `offload`.
enum Shell {
    /// Runs `argv` to completion; stdout and stderr go to a temporary file that is read back.
    static func run(_ argv: [String]) throws(HarnessError) -> CommandResult {
        var template = Array("/tmp/kvd-faults-out-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw HarnessError.spawnFailed(command: argv.joined(separator: " "), errno: errno) }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer {
            close(fd)
            unlink(path)
        }
        let pid = try spawn(argv, outputFD: fd)
        let status = waitForExit(pid)
        lseek(fd, 0, SEEK_SET)
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            output += buffer[0..<count]
        }
        return CommandResult(status: status, output: String(decoding: output, as: UTF8.self))
    }

    /// Runs `argv` and returns its output; throws if it exits non-zero.
    @discardableResult
    static func check(_ argv: [String]) throws(HarnessError) -> String {
        let result = try run(argv)
        guard result.status == 0 else {
            throw HarnessError.commandFailed(command: argv.joined(separator: " "), status: result.status, output: result.output)
        }
        return result.output
    }

    /// Starts `argv` in the background with stdout and stderr appended to `logPath`.
    static func start(_ argv: [String], logPath: String) throws(HarnessError) -> pid_t {
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw HarnessError.fileWrite(path: logPath, detail: "errno \(errno)") }
        defer { close(fd) }
        return try spawn(argv, outputFD: fd)
    }

    /// The exit status of `pid` (128 + signal if a signal ended it), waiting for it.
    static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return decode(status)
    }

    /// The exit status of `pid` if it has exited, without waiting; nil while it runs.
    static func exitStatusIfExited(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid ? decode(status) : nil
    }

    /// Whether `program` is an executable on `$PATH`.
    static func has(_ program: String) -> Bool {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(program)", X_OK) == 0 }
    }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    private static func spawn(_ argv: [String], outputFD: Int32) throws(HarnessError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 1)
        posix_spawn_file_actions_adddup2(&actions, outputFD, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children start with default signal handling and nothing blocked, whatever the harness set.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw HarnessError.spawnFailed(command: argv.joined(separator: " "), errno: result) }
        return pid
    }
}

/// Runs blocking `work` on its own thread, so the cooperative pool (two threads on a 2-core
/// machine) keeps serving the workload clients meanwhile.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws(HarnessError) -> T) async throws(HarnessError) -> T {
    let result: Result<T, HarnessError> = await withCheckedContinuation { continuation in
        var thread = pthread_t()
        let box = Unmanaged.passRetained(ThreadWork {
            continuation.resume(returning: Result { () throws(HarnessError) -> T in try work() })
        })
        let created = pthread_create(&thread, nil, { raw in
            // The argument is the pointer passed below, never nil.
            guard let raw else { return nil }
            let work = Unmanaged<ThreadWork>.fromOpaque(raw).takeRetainedValue()
            work.body()
            return nil
        }, box.toOpaque())
        if created == 0 {
            pthread_detach(thread)
        } else {
            box.takeRetainedValue().body()
        }
    }
    return try result.get()
}

/// The body of a thread started by `offload`.
private final class ThreadWork: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Prints one line straight to stdout (no buffering), so a CI log shows each fault as it
/// happens even when stdout is a pipe or a file.
func say(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return }
        written += count
    }
}
