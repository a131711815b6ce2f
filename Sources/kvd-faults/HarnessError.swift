/// Everything that ends a fault-harness run early, each with one line a person can act on.
enum HarnessError: Error, CustomStringConvertible {
    /// The harness must run as root to create network namespaces and firewall rules.
    case notRoot
    /// `ip netns add` failed: the kernel or container does not allow network namespaces.
    case networkNamespacesUnavailable(String)
    /// A required program (`ip`, `nft` or `iptables`, `kvd`) is missing.
    case missingProgram(String)
    /// A helper command exited non-zero.
    case commandFailed(command: String, status: Int32, output: String)
    /// A process could not be started at all.
    case spawnFailed(command: String, errno: Int32)
    /// The kvd binary is not where `--bin-dir` says.
    case binaryMissing(path: String)
    /// Every 10.231.x.0/24 subnet the harness may use is already taken on this machine.
    case noFreeSubnet
    /// The cluster did not agree on a leader in time.
    case noLeader(waited: Duration, detail: String)
    /// A file could not be written.
    case fileWrite(path: String, detail: String)
    /// A file could not be read.
    case fileRead(path: String, detail: String)
    /// A line of a history file that is not an operation.
    case badHistoryLine(path: String, line: Int, text: String)

    /// Whether the run cannot happen on this machine at all (as opposed to failing).
    var isEnvironmentMissing: Bool {
        switch self {
        case .notRoot, .networkNamespacesUnavailable: true
        default: false
        }
    }

    var description: String {
        switch self {
        case .notRoot:
            "needs root (network namespaces, a bridge and firewall rules)"
        case .networkNamespacesUnavailable(let detail):
            "network namespaces are not available: \(detail)"
        case .missingProgram(let name):
            "\(name) not found (scripts/faults.sh installs iproute2 and nftables)"
        case .commandFailed(let command, let status, let output):
            "`\(command)` exited with status \(status): \(output.trimmingTrailingNewlines)"
        case .binaryMissing(let path):
            "\(path) not found or not executable: build it (swift build -c release --product kvd) or pass --bin-dir"
        case .spawnFailed(let command, let errno):
            "cannot run `\(command)`: errno \(errno)"
        case .noFreeSubnet:
            "no free 10.231.x.0/24 subnet for the harness bridge"
        case .noLeader(let waited, let detail):
            "no leader known by every node after \(waited)\(detail.isEmpty ? "" : ": \(detail)")"
        case .fileWrite(let path, let detail):
            "cannot write \(path): \(detail)"
        case .fileRead(let path, let detail):
            "cannot read \(path): \(detail)"
        case .badHistoryLine(let path, let line, let text):
            "\(path):\(line): not an operation: \(text.prefix(200))"
        }
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        return text
    }
}
