#if canImport(Glibc)
import Glibc
#endif

/// The names and addresses of one run's network: a bridge in the root namespace holding the
/// harness's address, and per node a namespace joined to the bridge by a veth pair.
///
/// Names carry the run id (the harness's pid in hex), so a crashed run's leftovers never
/// collide with a new run, and a new run can tell them apart from a live run's.
struct Topology: Sendable {
    /// Prefix of every name the harness creates; also how leftovers are found.
    static let prefix = "kvdf"

    let runID: String
    let nodeCount: Int
    /// The third octet of the run's 10.231.x.0/24.
    let subnetOctet: Int

    var bridge: String { "\(Self.prefix)\(runID)-br" }
    var harnessAddress: String { "10.231.\(subnetOctet).\(Limits.harnessHost)" }
    var nodes: ClosedRange<Int> { 1...nodeCount }

    func namespace(_ node: Int) -> String { "\(Self.prefix)-\(runID)-n\(node)" }
    func hostVeth(_ node: Int) -> String { "\(Self.prefix)\(runID)-h\(node)" }
    func nodeVeth(_ node: Int) -> String { "\(Self.prefix)\(runID)-p\(node)" }
    func address(_ node: Int) -> String { "10.231.\(subnetOctet).\(Limits.nodeHostBase + node)" }

    /// The run id of this process.
    static var currentRunID: String { String(getpid(), radix: 16) }

    /// Picks a subnet no interface on this machine uses yet, starting from one derived from
    /// the run id so that concurrent runs rarely even try the same one.
    static func make(nodeCount: Int) throws(HarnessError) -> Topology {
        let runID = currentRunID
        let addresses = try Shell.check(["ip", "-4", "-o", "addr", "show"])
        let octets = Array(Limits.subnetOctets)
        let start = Int(getpid()) % octets.count
        for step in 0..<octets.count {
            let octet = octets[(start + step) % octets.count]
            if !addresses.contains("10.231.\(octet).") {
                return Topology(runID: runID, nodeCount: nodeCount, subnetOctet: octet)
            }
        }
        throw HarnessError.noFreeSubnet
    }

    /// Creates the bridge, the namespaces and veths, and each namespace's empty firewall.
    func create(firewall: Firewall) throws(HarnessError) {
        try Shell.check(["ip", "link", "add", bridge, "type", "bridge"])
        Cleanup.shared.addLink(bridge)
        try Shell.check(["ip", "addr", "add", "\(harnessAddress)/24", "dev", bridge])
        try Shell.check(["ip", "link", "set", bridge, "up"])
        for node in nodes {
            let ns = namespace(node)
            try Shell.check(["ip", "netns", "add", ns])
            Cleanup.shared.addNamespace(ns)
            try Shell.check(["ip", "link", "add", hostVeth(node), "type", "veth", "peer", "name", nodeVeth(node), "netns", ns])
            Cleanup.shared.addLink(hostVeth(node))
            try Shell.check(["ip", "link", "set", hostVeth(node), "master", bridge, "up"])
            try Shell.check(["ip", "netns", "exec", ns, "ip", "addr", "add", "\(address(node))/24", "dev", nodeVeth(node)])
            try Shell.check(["ip", "netns", "exec", ns, "ip", "link", "set", nodeVeth(node), "up"])
            try Shell.check(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
            try firewall.prepare(namespace: ns)
        }
    }

    /// Checks that network namespaces can be made here (root, kernel and container permitting).
    static func probeNamespaces() throws(HarnessError) {
        guard geteuid() == 0 else { throw HarnessError.notRoot }
        guard Shell.has("ip") else { throw HarnessError.missingProgram("ip (iproute2)") }
        let probe = "\(prefix)-\(currentRunID)-probe"
        let result = try Shell.run(["ip", "netns", "add", probe])
        guard result.status == 0 else { throw HarnessError.networkNamespacesUnavailable(result.output.trimmingTrailingNewlines) }
        _ = try Shell.run(["ip", "netns", "del", probe])
    }

    /// Removes namespaces and links left by runs whose process is gone (a crash or SIGKILL);
    /// returns what it removed.
    static func removeLeftovers() -> [String] {
        var removed: [String] = []
        let namespaces = (try? Shell.run(["ip", "netns", "list"]))?.output ?? ""
        for line in namespaces.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix("\(prefix)-"), let runID = name.split(separator: "-").dropFirst().first,
                !isLive(runID: String(runID))
            else { continue }
            killProcesses(inNamespace: name)
            _ = try? Shell.run(["ip", "netns", "del", name])
            removed.append(name)
        }
        let links = (try? Shell.run(["ip", "-o", "link", "show"]))?.output ?? ""
        for line in links.split(separator: "\n") {
            // "12: kvdf1a2b-h1@if3: <...>": the name is the second field, up to an '@'.
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { continue }
            let name = String(fields[1].prefix { $0 != "@" && $0 != ":" })
            guard name.hasPrefix(prefix), let runID = linkRunID(name), !isLive(runID: runID) else { continue }
            _ = try? Shell.run(["ip", "link", "del", name])
            removed.append(name)
        }
        return removed
    }

    /// SIGKILLs every process still running in namespace `name` (resumed first if stopped).
    static func killProcesses(inNamespace name: String) {
        let pids = (try? Shell.run(["ip", "netns", "pids", name]))?.output ?? ""
        for pid in pids.split(separator: "\n").compactMap({ pid_t($0) }) {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
    }

    /// The run id in a link name such as `kvdf1a2b-h1` or `kvdf1a2b-br`: the hex digits between
    /// the prefix and the dash.
    private static func linkRunID(_ name: String) -> String? {
        let rest = name.dropFirst(prefix.count)
        guard let dash = rest.firstIndex(of: "-") else { return nil }
        let id = rest[..<dash]
        return !id.isEmpty && id.allSatisfy(\.isHexDigit) ? String(id) : nil
    }

    /// Whether run `runID` belongs to a live kvd-faults process (a pid may have been reused by
    /// something else, so the process name is checked).
    private static func isLive(runID: String) -> Bool {
        guard let pid = pid_t(runID, radix: 16) else { return false }
        if pid == getpid() { return true }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        return readSmallFile("/proc/\(pid)/comm").hasPrefix("kvd-faults")
    }
}

/// The first bytes of a small file such as `/proc/PID/comm`, or "" if it cannot be read.
func readSmallFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = read(fd, &buffer, buffer.count)
    return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
}
