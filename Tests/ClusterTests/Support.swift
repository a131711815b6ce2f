import Foundation
import KVProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Support for the real-process tests: free ports, a temporary cluster of `kvd` processes started
// from the binaries next to the test bundle, `kvctl`/`redis-cli` runs, a blocking RESP socket and
// bounded polling. Every blocking call runs on its own thread (`offload`), never on the
// cooperative pool, so these tests do not starve the other suites running in the same process.

/// A failed expectation with a message (and, for cluster waits, the tail of each node's log).
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs blocking `work` on a new thread and resumes with its result.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Sleeps on the cooperative pool without blocking a thread.
func pause(_ duration: Duration) async {
    try? await Task.sleep(for: duration)
}

/// Polls `condition` every `every` until it holds or `timeout` passes; then throws, naming `what`.
func eventually(
    _ what: String, timeout: Duration = .seconds(15), every: Duration = .milliseconds(50),
    diagnostics: @Sendable () -> String = { "" }, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        if ContinuousClock.now >= deadline {
            throw TestFailure("timed out after \(timeout) waiting for \(what)\(diagnostics())")
        }
        await pause(every)
    }
}

// MARK: - Binaries and tools

enum Tools {
    /// The directory of the running test bundle (`.build/<triple>/debug`), where SwiftPM also puts
    /// the `kvd` and `kvctl` executables.
    static let binDirectory: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return ".build/debug" }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (path as NSString).deletingLastPathComponent
    }()

    static var kvd: String { binDirectory + "/kvd" }
    static var kvctl: String { binDirectory + "/kvctl" }

    /// `name` on `$PATH`, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// `redis-cli`, or a failure that says how to get it.
    static func redisCLI() throws -> String {
        guard let path = which("redis-cli") else {
            throw TestFailure("redis-cli not found on PATH; scripts/install-deps.sh installs redis-tools")
        }
        return path
    }

    static func requireBinaries() throws {
        for binary in [kvd, kvctl] where access(binary, X_OK) != 0 {
            throw TestFailure("\(binary) not found; run `swift build --build-tests` first")
        }
    }
}

// MARK: - Free ports and temporary directories

/// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago: each is found by binding
/// port 0, and all sockets stay open until every port is chosen so none is handed out twice.
func freePorts(_ count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { for fd in sockets { close(fd) } }
    var ports: [Int] = []
    while ports.count < count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        sockets.append(fd)
        var address = sockaddr_in.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestFailure("bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        ports.append(Int(UInt16(bigEndian: address.sin_port)))
    }
    return ports
}

/// A socket listening on 127.0.0.1:`port` (to make a port "in use"); close it with `close(fd)`.
func listenOn(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in.loopback(port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
        close(fd)
        throw TestFailure("cannot listen on port \(port): \(String(cString: strerror(errno)))")
    }
    return fd
}

extension sockaddr_in {
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}

/// A new empty directory under the system temporary directory.
func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var template = Array("\(NSTemporaryDirectory())/\(prefix)-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(String(cString: strerror(errno)))") }
    return String(cString: made)
}

func writeFile(_ path: String, _ text: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

func readFile(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

// MARK: - Running commands

struct CommandResult: Sendable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
    /// The non-empty lines of stderr.
    var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { !$0.isEmpty } }
    var description: String { "exit \(status), stdout \(stdout.debugDescription), stderr \(stderr.debugDescription)" }
}

/// A started child process whose output goes to files; owned by one test.
final class Child: @unchecked Sendable {
    let process: Process
    let stdoutPath: String
    let stderrPath: String

    /// Starts `executable` with `arguments`; stdout and stderr go to the given files (appended).
    init(_ executable: String, _ arguments: [String], stdout: String, stderr: String, environment: [String: String]? = nil)
        throws
    {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // KVCTL_ENDPOINTS would take kvctl away from the test cluster's --config.
        var inherited = ProcessInfo.processInfo.environment
        inherited["KVCTL_ENDPOINTS"] = nil
        process.environment = inherited.merging(environment ?? [:]) { $1 }
        stdoutPath = stdout
        stderrPath = stderr
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.appending(stdout)
        process.standardError = stdout == stderr ? process.standardOutput : try Self.appending(stderr)
        try process.run()
    }

    private static func appending(_ path: String) throws -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("open \(path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Blocks until the process ends or `timeout` passes; returns its status, nil on timeout.
    func waitBlocking(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            usleep(2_000)
        }
        return process.terminationStatus
    }

    func wait(timeout: Duration) async throws -> Int32? {
        try await offload { self.waitBlocking(timeout: timeout) }
    }

    /// SIGKILL and reap (used by every test's cleanup, also on failure).
    func killNow() {
        signal(SIGKILL)
        _ = waitBlocking(timeout: .seconds(10))
    }
}

/// Runs a command to completion (killed after `timeout`) and returns its status and output.
func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(60)
) async throws -> CommandResult {
    let directory = NSTemporaryDirectory()
    let stem = "\(directory)/kvd-clustertests-run-\(UUID().uuidString)"
    defer {
        unlink(stem + ".out")
        unlink(stem + ".err")
    }
    let child = try Child(executable, arguments, stdout: stem + ".out", stderr: stem + ".err", environment: environment)
    guard let status = try await child.wait(timeout: timeout) else {
        child.killNow()
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
    }
    return CommandResult(status: status, stdout: readFile(stem + ".out"), stderr: readFile(stem + ".err"))
}

// MARK: - A cluster of kvd processes

/// One temporary cluster: a cluster.conf with free ports and small timeouts, a data directory and
/// log file per node under one temporary directory, and the `kvd` processes. `shutdown()` (call
/// it in a `defer`) kills every process it started and removes the directory (kept when
/// `KVD_KEEP_TEST_DIRS` is set).
final class Cluster: @unchecked Sendable {
    struct Node: Sendable {
        var id: Int
        var peerPort: Int
        var clientPort: Int
        var dataDirectory: String
        var logPath: String
        /// The `client-tls=` port, for clusters made with `tls: true`.
        var tlsPort: Int? = nil
        var endpoint: String { "127.0.0.1:\(clientPort)" }
    }

    /// Settings for tests: fast elections, so a failover takes well under a second.
    static let fastSettings: KeyValuePairs<String, String> = [
        "heartbeat-ms": "25", "election-timeout-ms": "250", "request-timeout-ms": "5000",
    ]

    let directory: String
    let configPath: String
    /// The configuration a joining node starts from: `configPath` plus the joiners' node lines.
    let joinConfigPath: String
    /// Every node: the bootstrap members (`ids`), then the joiners.
    let nodes: [Node]
    let size: Int
    let clusterID: String
    let electionTimeout: Duration
    private let lock = NSLock()
    private var children: [Int: Child] = [:]
    private var clients: [Child] = []

    /// `AUTH` arguments sent before each `INFO` the helpers send, for clusters with users.
    let infoAuth: String?

    /// `size` bootstrap members in `configPath`, and `joiners` more nodes (ids after them) that
    /// only `joinConfigPath` lists, for `startJoining`. With `tls`, each node also has a
    /// `client-tls=` address (`Node.tlsPort`); without `plainClients`, only that one.

    init(
        size: Int, clusterID: String = "ctest", settings: KeyValuePairs<String, String> = Cluster.fastSettings, joiners: Int = 0,
        infoAuth: String? = nil, tls: Bool = false, plainClients: Bool = true
    ) throws {
        self.infoAuth = infoAuth
        try Tools.requireBinaries()
        let directory = try makeTemporaryDirectory("kvd-clustertests")
        self.directory = directory
        configPath = directory + "/cluster.conf"
        joinConfigPath = directory + "/join.conf"
        self.clusterID = clusterID
        self.size = size
        let width = tls ? 3 : 2
        let ports = try freePorts((size + joiners) * width)
        nodes = (1...(size + joiners)).map { id in
            Node(
                id: id, peerPort: ports[width * (id - 1)], clientPort: ports[width * (id - 1) + 1],
                dataDirectory: "\(directory)/data/\(id)", logPath: "\(directory)/node\(id).log",
                tlsPort: tls ? ports[width * (id - 1) + 2] : nil)
        }
        var lines = ["# written by ClusterTests", "cluster-id \(clusterID)"]
        var electionMillis = 500
        for (name, value) in settings {
            lines.append("\(name) \(value)")
            if name == "election-timeout-ms", let millis = Int(value) { electionMillis = millis }
        }
        electionTimeout = .milliseconds(electionMillis)
        let nodeLines = nodes.map { node in
            "node \(node.id) peer=127.0.0.1:\(node.peerPort)"
                + (plainClients ? " client=127.0.0.1:\(node.clientPort)" : "")
                + (node.tlsPort.map { " client-tls=127.0.0.1:\($0)" } ?? "")
        }
        try writeFile(configPath, (lines + nodeLines.prefix(size)).joined(separator: "\n") + "\n")
        try writeFile(joinConfigPath, (lines + nodeLines).joined(separator: "\n") + "\n")
    }

    /// The bootstrap members.
    var ids: [Int] { Array(1...size) }
    func node(_ id: Int) -> Node { nodes[id - 1] }
    var endpoints: [KVEndpoint] { nodes.map { KVEndpoint(host: "127.0.0.1", port: $0.clientPort) } }

    /// Starts (or restarts, from its data directory) node `id`.
    func start(_ id: Int) throws {
        let node = node(id)
        let child = try Child(
            Tools.kvd, ["--config", configPath, "--id", String(id), "--data-dir", node.dataDirectory],
            stdout: node.logPath, stderr: node.logPath)
        lock.withLock { children[id] = child }
    }

    /// Starts node `id` with `--join` (docs/CONFIGURATION.md): no bootstrap membership, its
    /// addresses from `joinConfigPath`.
    func startJoining(_ id: Int) throws {
        let node = node(id)
        let child = try Child(
            Tools.kvd, ["--config", joinConfigPath, "--id", String(id), "--data-dir", node.dataDirectory, "--join"],
            stdout: node.logPath, stderr: node.logPath)
        lock.withLock { children[id] = child }
    }

    func startAll() throws {
        for id in ids { try start(id) }
    }

    /// Nodes whose process is running.
    var running: [Int] {
        lock.withLock { children.filter { $0.value.isRunning }.map(\.key).sorted() }
    }

    func child(_ id: Int) -> Child? { lock.withLock { children[id] } }

    /// `kill -9` node `id` and reap it.
    func kill9(_ id: Int) async throws {
        guard let child = child(id) else { return }
        child.signal(SIGKILL)
        _ = try await child.wait(timeout: .seconds(10))
    }

    /// Sends SIGTERM to node `id` and waits for it to exit; returns the exit status.
    func terminate(_ id: Int, timeout: Duration = .seconds(20)) async throws -> Int32 {
        guard let child = child(id) else { throw TestFailure("node \(id) was never started") }
        child.signal(SIGTERM)
        guard let status = try await child.wait(timeout: timeout) else {
            throw TestFailure("node \(id) did not exit within \(timeout) of SIGTERM\(diagnostics())")
        }
        return status
    }

    /// Starts a client process (e.g. `kvctl lock`) that `shutdown()` kills if still running.
    func spawn(_ executable: String, _ arguments: [String], stdout: String, stderr: String) throws -> Child {
        let child = try Child(executable, arguments, stdout: stdout, stderr: stderr)
        lock.withLock { clients.append(child) }
        return child
    }

    /// Kills every process this cluster started (SIGKILL) and removes the directory.
    func shutdown() {
        let all = lock.withLock { Array(children.values) + clients }
        for child in all { child.signal(SIGKILL) }
        for child in all { _ = child.waitBlocking(timeout: .seconds(10)) }
        if ProcessInfo.processInfo.environment["KVD_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// The last lines of every node's log, for failure messages.
    func diagnostics(lines count: Int = 12) -> String {
        var text = ""
        for node in nodes {
            let lines = readFile(node.logPath).split(separator: "\n").suffix(count)
            text += "\n--- node \(node.id) log (last \(lines.count) lines):\n" + lines.joined(separator: "\n")
        }
        return text
    }

    // MARK: Asking the nodes

    /// Node `id`'s INFO fields, or nil if it does not answer within `timeout`.
    func info(_ id: Int, timeout: Duration = .seconds(2)) async -> [String: String]? {
        let port = node(id).clientPort
        let auth = infoAuth
        return try? await offload {
            let connection = try RawConnection(port: port, timeout: timeout)
            defer { connection.close() }
            if let auth { _ = try connection.roundTrip("AUTH \(auth)\r\n") }
            connection.send("INFO\r\n")
            guard case .bulk(let bytes?) = try connection.readReply() else { return nil }
            return parseInfo(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// INFO of every running node, concurrently.
    func infos(_ ids: [Int]? = nil) async -> [Int: [String: String]] {
        await withTaskGroup(of: (Int, [String: String]?).self) { group in
            for id in ids ?? running { group.addTask { (id, await self.info(id)) } }
            var result: [Int: [String: String]] = [:]
            for await (id, fields) in group { if let fields { result[id] = fields } }
            return result
        }
    }

    /// The id of the leader once every node in `among` (default: running ones) answers and agrees
    /// on one leader that calls itself leader; throws after `timeout`.
    @discardableResult
    func waitForLeader(among: [Int]? = nil, timeout: Duration = .seconds(20)) async throws -> Int {
        var found = 0
        try await eventually("one leader that every running node agrees on", timeout: timeout, diagnostics: { self.diagnostics() }) {
            let members = among ?? running
            let infos = await infos(members)
            guard infos.count == members.count else { return false }
            let leaders = infos.filter { $0.value["role"] == "leader" }.map(\.key)
            guard leaders.count == 1, let leader = leaders.first else { return false }
            guard infos.values.allSatisfy({ $0["leader_id"] == String(leader) }) else { return false }
            found = leader
            return true
        }
        return found
    }

    // MARK: Clients

    /// `kvctl --config <this cluster's file> ARGS`.
    func kvctl(_ arguments: [String], timeout: Duration = .seconds(60)) async throws -> CommandResult {
        try await runCommand(Tools.kvctl, ["--config", configPath] + arguments, timeout: timeout)
    }

    /// `kvctl --endpoints <node id's client address only> ARGS`.
    func kvctl(via id: Int, _ arguments: [String]) async throws -> CommandResult {
        try await runCommand(Tools.kvctl, ["--endpoints", node(id).endpoint] + arguments)
    }

    /// `redis-cli -h 127.0.0.1 -p <node id's client port> ARGS`.
    func redisCLI(_ id: Int, _ arguments: [String]) async throws -> CommandResult {
        try await runCommand(try Tools.redisCLI(), ["-h", "127.0.0.1", "-p", String(node(id).clientPort)] + arguments)
    }

    /// A `KVClient` over every node (close it when done).
    func client() -> KVClient {
        KVClient(configuration: KVClient.Configuration(endpoints: endpoints))
    }
}

/// Parses INFO's `name:value` lines (CRLF or LF), skipping `#` headers.
func parseInfo(_ text: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) where !line.hasPrefix("#") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
    }
    return fields
}

/// Runs `body` with a started cluster of `size` nodes and a known leader; every process is killed
/// afterwards, whether `body` returns or throws.
func withCluster<T>(
    size: Int, settings: KeyValuePairs<String, String> = Cluster.fastSettings, _ body: (Cluster, _ leader: Int) async throws -> T
) async throws -> T {
    let cluster = try Cluster(size: size, settings: settings)
    defer { cluster.shutdown() }
    try cluster.startAll()
    let leader = try await cluster.waitForLeader()
    return try await body(cluster, leader)
}

// MARK: - A raw RESP connection

/// A RESP reply as the server sent it, decoded independently of KVProtocol.
indirect enum Reply: Equatable, Sendable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([Reply]?)

    static func bulk(_ text: String) -> Reply { .bulk(Array(text.utf8)) }

    var description: String {
        switch self {
        case .simple(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulk(let bytes?): return String(decoding: bytes, as: UTF8.self).debugDescription
        case .bulk(nil): return "(nil)"
        case .array(let items?): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .array(nil): return "(nil array)"
        }
    }

    var errorText: String? {
        if case .error(let text) = self { return text }
        return nil
    }
}

/// A blocking TCP connection to a client port, for sending hand-made bytes and reading replies.
/// Use it inside `offload` (or through the async wrappers below).
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    /// Whether the server closed the connection (a read returned 0 or ECONNRESET).
    private(set) var closedByPeer = false

    init(port: Int, timeout: Duration = .seconds(10)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestFailure("connect to port \(port): \(reason)")
        }
        let seconds = timeout.components.seconds
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func close() { Glibc.close(fd) }

    /// Writes all of `bytes`; returns false if the connection is broken.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Sends one byte per write with a pause, so the server sees many tiny reads.
    func sendSlowly(_ bytes: [UInt8], pauseMicros: UInt32 = 500) {
        for byte in bytes {
            send([byte])
            usleep(pauseMicros)
        }
    }

    /// Reads more bytes; false at end of stream. Throws on timeout.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            buffer.append(contentsOf: chunk[0..<count])
            return true
        }
        if count == 0 || errno == ECONNRESET {
            closedByPeer = true
            return false
        }
        throw TestFailure("no reply from the server: \(String(cString: strerror(errno)))")
    }

    private func line() throws -> [UInt8] {
        while true {
            if let index = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                guard index > start, buffer[index - 1] == UInt8(ascii: "\r") else {
                    throw TestFailure("reply line not ended by CRLF")
                }
                let line = Array(buffer[start..<(index - 1)])
                start = index + 1
                return line
            }
            guard try fill() else { throw TestFailure("connection closed in the middle of a reply") }
        }
    }

    private func bytes(_ count: Int) throws -> [UInt8] {
        while buffer.count - start < count + 2 {
            guard try fill() else { throw TestFailure("connection closed in the middle of a bulk reply") }
        }
        let payload = Array(buffer[start..<(start + count)])
        start += count + 2
        return payload
    }

    /// Reads one complete reply. Throws on timeout or if the server closes first.
    func readReply() throws -> Reply {
        let header = try line()
        guard let kind = header.first else { throw TestFailure("empty reply line") }
        let rest = String(decoding: header.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"):
            guard let value = Int64(rest) else { throw TestFailure("bad integer reply \(rest)") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(rest) else { throw TestFailure("bad bulk length \(rest)") }
            return length < 0 ? .bulk(nil) : .bulk(try bytes(length))
        case UInt8(ascii: "*"):
            guard let count = Int(rest) else { throw TestFailure("bad array length \(rest)") }
            if count < 0 { return .array(nil) }
            return .array(try (0..<count).map { _ in try readReply() })
        default:
            throw TestFailure("unexpected reply byte \(kind) in \(String(decoding: header, as: UTF8.self).debugDescription)")
        }
    }

    /// Whether the server closes the connection (reads to the end, discarding bytes, within the
    /// receive timeout). Any bytes already buffered are dropped.
    func closesConnection() -> Bool {
        buffer = []
        start = 0
        while true {
            do {
                if try !fill() { return true }
                buffer = []
                start = 0
            } catch {
                return false
            }
        }
    }

    /// Sends `text` and reads one reply.
    func roundTrip(_ text: String) throws -> Reply {
        send(text)
        return try readReply()
    }
}

/// RESP multibulk encoding of a command.
func multibulk(_ arguments: [String]) -> [UInt8] {
    var out = Array("*\(arguments.count)\r\n".utf8)
    for argument in arguments {
        out += Array("$\(argument.utf8.count)\r\n".utf8) + Array(argument.utf8) + [13, 10]
    }
    return out
}

// MARK: - Checks off the test's task

/// Collects failed checks made on a plain thread (where `#expect` cannot see the running test)
/// so the test records them afterwards.
final class Checks: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [(String, SourceLocation)] = []

    func that(_ condition: Bool, _ message: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { lock.withLock { failures.append(("check failed " + message(), sourceLocation)) } }
    }

    func equal<T: Equatable>(_ actual: T, _ expected: T, _ message: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        if actual != expected {
            lock.withLock { failures.append(("got \(actual), expected \(expected) \(message())", sourceLocation)) }
        }
    }

    func record() {
        for (message, location) in lock.withLock({ failures }) {
            Issue.record(Comment(rawValue: message), sourceLocation: location)
        }
    }
}

/// Runs blocking `body` on its own thread with a `Checks`, then records its failures in the test.
func checking(_ body: @escaping @Sendable (Checks) throws -> Void) async throws {
    let checks = Checks()
    defer { checks.record() }
    try await offload { try body(checks) }
}
