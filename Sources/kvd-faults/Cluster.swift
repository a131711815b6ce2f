import KVProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The kvd processes of a run, one per namespace, and what the faults do to them.
///
/// A node the harness did not kill that exits anyway is remembered as a crash: that is a kvd
/// bug, and it fails the run.
actor Cluster {
    /// What the harness believes a node process is doing.
    enum NodeState: Sendable {
        case running(pid_t)
        case paused(pid_t)
        case killed
    }

    let topology: Topology
    let kvdPath: String
    let workDirectory: String
    private(set) var states: [Int: NodeState] = [:]
    /// Unexpected exits: node and exit status.
    private(set) var crashes: [(node: Int, status: Int32)] = []

    init(topology: Topology, kvdPath: String, workDirectory: String) {
        self.topology = topology
        self.kvdPath = kvdPath
        self.workDirectory = workDirectory
    }

    var configPath: String { "\(workDirectory)/cluster.conf" }
    func logPath(_ node: Int) -> String { "\(workDirectory)/node\(node).log" }
    func dataDirectory(_ node: Int) -> String { "\(workDirectory)/data/\(node)" }

    /// The client endpoint of every node, in node order.
    nonisolated var endpoints: [KVEndpoint] { topology.nodes.map(endpoint) }

    nonisolated func endpoint(_ node: Int) -> KVEndpoint {
        KVEndpoint(host: topology.address(node), port: Limits.clientPort)
    }

    /// The configuration file every node reads: kvd's default timings, each node on its own address.
    func writeConfiguration() throws(HarnessError) {
        var lines = [
            "# Written by kvd-faults for run \(topology.runID).",
            "cluster-id kvdf-\(topology.runID)",
            "heartbeat-ms \(Limits.heartbeatMillis)",
            "election-timeout-ms \(Limits.electionTimeoutMillis)",
        ]
        for node in topology.nodes {
            let address = topology.address(node)
            lines.append("node \(node) peer=\(address):\(Limits.peerPort) client=\(address):\(Limits.clientPort)")
        }
        try writeFile(configPath, lines.joined(separator: "\n") + "\n")
    }

    func startAll() throws(HarnessError) {
        for node in topology.nodes { try start(node) }
    }

    /// Starts node `node` inside its namespace on its data directory (kept across restarts);
    /// `join` starts it with `--join` (an empty replacement waiting to be added).
    func start(_ node: Int, join: Bool = false) throws(HarnessError) {
        let argv = [
            "ip", "netns", "exec", topology.namespace(node),
            kvdPath, "--config", configPath, "--id", String(node), "--data-dir", dataDirectory(node),
        ] + (join ? ["--join"] : [])
        let pid = try Shell.start(argv, logPath: logPath(node))
        Cleanup.shared.addProcess(pid)
        states[node] = .running(pid)
    }

    /// `kill -9` of a node; returns false if it was not running.
    @discardableResult
    func kill9(_ node: Int) -> Bool {
        guard let pid = pid(of: node) else { return false }
        kill(pid, SIGCONT)
        kill(pid, SIGKILL)
        _ = Shell.waitForExit(pid)
        Cleanup.shared.removeProcess(pid)
        states[node] = .killed
        return true
    }

    /// `SIGSTOP` of a running node; returns false if it was not running.
    @discardableResult
    func pause(_ node: Int) -> Bool {
        guard case .running(let pid)? = states[node] else { return false }
        kill(pid, SIGSTOP)
        states[node] = .paused(pid)
        return true
    }

    /// `SIGCONT` of a paused node.
    func resume(_ node: Int) {
        guard case .paused(let pid)? = states[node] else { return }
        kill(pid, SIGCONT)
        states[node] = .running(pid)
    }

    /// Deletes a killed node's data directory (its machine is gone for good).
    func wipe(_ node: Int) throws(HarnessError) {
        guard case .killed? = states[node] else { return }
        _ = try Shell.run(["rm", "-rf", dataDirectory(node)])
    }

    /// Starts a killed node again on the same data directory.
    func restart(_ node: Int) throws(HarnessError) {
        guard case .killed? = states[node] else { return }
        try start(node)
    }

    /// Records nodes that exited without being killed by the harness; returns the new ones.
    func reapUnexpectedExits() -> [(node: Int, status: Int32)] {
        var found: [(node: Int, status: Int32)] = []
        for (node, state) in states {
            let pid: pid_t
            switch state {
            case .running(let running), .paused(let running): pid = running
            case .killed: continue
            }
            if let status = Shell.exitStatusIfExited(pid) {
                Cleanup.shared.removeProcess(pid)
                states[node] = .killed
                found.append((node, status))
            }
        }
        crashes += found
        return found
    }

    /// SIGTERM to every node, then SIGKILL after a grace period.
    func stopAll() async {
        for node in topology.nodes {
            guard let pid = pid(of: node) else { continue }
            kill(pid, SIGCONT)
            kill(pid, SIGTERM)
        }
        let deadline = ContinuousClock.now + Limits.stopGrace
        for node in topology.nodes {
            guard let pid = pid(of: node) else { continue }
            while Shell.exitStatusIfExited(pid) == nil {
                if ContinuousClock.now >= deadline {
                    kill(pid, SIGKILL)
                    _ = Shell.waitForExit(pid)
                    break
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            Cleanup.shared.removeProcess(pid)
            states[node] = .killed
        }
    }

    /// The pid of a running or paused node.
    func pid(of node: Int) -> pid_t? {
        switch states[node] {
        case .running(let pid)?, .paused(let pid)?: pid
        case .killed?, nil: nil
        }
    }

    /// The last `lines` lines of a node's log, for failure reports.
    func logTail(_ node: Int, lines: Int = 15) -> String {
        let text = (try? Shell.run(["tail", "-n", String(lines), logPath(node)]))?.output ?? ""
        return text
    }
}

/// Writes `text` to `path`, replacing it.
func writeFile(_ path: String, _ text: String) throws(HarnessError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw HarnessError.fileWrite(path: path, detail: "errno \(errno)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { throw HarnessError.fileWrite(path: path, detail: "errno \(errno)") }
        written += count
    }
}

/// The whole of a text file.
func readFile(_ path: String) throws(HarnessError) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw HarnessError.fileRead(path: path, detail: "errno \(errno)") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        guard count >= 0 else { throw HarnessError.fileRead(path: path, detail: "errno \(errno)") }
        if count == 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
