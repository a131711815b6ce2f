/// Drop rules inside one node's namespace, between node addresses only (the harness's own
/// address is never named, so its clients reach every node throughout).
///
/// nftables is used when `nft` exists, else iptables. Every rule lives in the node's own
/// namespace: in its input hook (packets from a peer) or output hook (packets to a peer).
enum Firewall: Sendable {
    case nftables
    case iptables

    /// Which direction of a node's traffic with one peer a rule drops.
    enum Direction: Sendable {
        /// Packets from the peer arriving at this node.
        case fromPeer
        /// Packets from this node to the peer.
        case toPeer
    }

    /// The backend available on this machine.
    static func detect() throws(HarnessError) -> Firewall {
        if Shell.has("nft") { return .nftables }
        if Shell.has("iptables") { return .iptables }
        throw HarnessError.missingProgram("nft (nftables) or iptables")
    }

    var name: String {
        switch self {
        case .nftables: "nftables"
        case .iptables: "iptables"
        }
    }

    private static let table = "kvdf"

    /// Gives a fresh namespace an empty table with accepting input and output chains.
    func prepare(namespace: String) throws(HarnessError) {
        switch self {
        case .nftables:
            try exec(namespace, ["nft", "add", "table", "inet", Self.table])
            for hook in ["input", "output"] {
                try exec(namespace, [
                    "nft", "add", "chain", "inet", Self.table, hook,
                    "{", "type", "filter", "hook", hook, "priority", "0", ";", "policy", "accept", ";", "}",
                ])
            }
        case .iptables:
            break  // A new namespace's iptables chains are empty and accept.
        }
    }

    /// One drop rule: traffic with `peerAddress` in `direction`.
    struct Rule: Sendable {
        var peerAddress: String
        var direction: Direction
    }

    /// Adds `rules` to the node of `namespace`, in one `nft` run so they start together.
    func drop(namespace: String, _ rules: [Rule]) throws(HarnessError) {
        guard !rules.isEmpty else { return }
        switch self {
        case .nftables:
            let commands = rules.map { rule in
                switch rule.direction {
                case .fromPeer: "add rule inet \(Self.table) input ip saddr \(rule.peerAddress) drop"
                case .toPeer: "add rule inet \(Self.table) output ip daddr \(rule.peerAddress) drop"
                }
            }
            try exec(namespace, ["nft", commands.joined(separator: "; ")])
        case .iptables:
            for rule in rules {
                switch rule.direction {
                case .fromPeer: try exec(namespace, ["iptables", "-w", "-A", "INPUT", "-s", rule.peerAddress, "-j", "DROP"])
                case .toPeer: try exec(namespace, ["iptables", "-w", "-A", "OUTPUT", "-d", rule.peerAddress, "-j", "DROP"])
                }
            }
        }
    }

    /// Removes every drop rule of the node of `namespace`.
    func heal(namespace: String) throws(HarnessError) {
        switch self {
        case .nftables:
            try exec(namespace, ["nft", "flush chain inet \(Self.table) input; flush chain inet \(Self.table) output"])
        case .iptables:
            try exec(namespace, ["iptables", "-w", "-F", "INPUT"])
            try exec(namespace, ["iptables", "-w", "-F", "OUTPUT"])
        }
    }

    private func exec(_ namespace: String, _ argv: [String]) throws(HarnessError) {
        try Shell.check(["ip", "netns", "exec", namespace] + argv)
    }
}
