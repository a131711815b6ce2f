import KVProtocol

/// The faults the harness injects. Each is applied, lasts a while, then healed; a new kind is a
/// new case here, its `apply` and, if it needs a new way back, a new `Healing`.
///
/// Network faults are drop rules between node addresses (see `Firewall`); process faults are
/// signals to one kvd. "Leader" targets the node that leads at that moment (a random node if
/// none does).
enum FaultKind: String, CaseIterable, Sendable, Codable {
    /// A random minority of nodes is cut off from the majority.
    case majorityMinority = "majority-minority"
    /// The leader is cut off from every other node.
    case isolateLeader = "isolate-leader"
    /// One node sees both halves of the rest; the halves do not see each other.
    case bridge
    /// The leader's packets to the other nodes are dropped; theirs still reach it.
    case oneWayLeaderOut = "one-way-leader-out"
    /// `kill -9` of the leader, restarted at heal.
    case killLeader = "kill-leader"
    /// `kill -9` of a random node, restarted at heal.
    case killRandom = "kill-random"
    /// `SIGSTOP` of the leader, `SIGCONT` at heal.
    case pauseLeader = "pause-leader"
    /// `SIGSTOP` of a random node, `SIGCONT` at heal.
    case pauseRandom = "pause-random"
    /// A random follower's machine is lost for good: `kill -9`, removed from the membership
    /// (`MEMBER REMOVE`), its data deleted. At heal a replacement with the same id and an empty
    /// data directory starts with `--join`, is added as a learner and promoted once caught up
    /// (the README's "Replace a dead node" runbook, under the workloads' load).
    case replaceRandom = "replace-random"
    /// The cluster shrinks by a minority and grows back, as an operator resizing it would:
    /// random members (the leader among them, at times) are removed one at a time with
    /// `MEMBER REMOVE`, then stopped and their data deleted (5 → 3 voters, or 3 → 2). At heal
    /// each comes back empty with `--join`, is added and promoted (3 → 5).
    case shrinkGrow = "shrink-grow"
}

/// How an applied fault is undone.
enum Healing: Sendable {
    /// Remove every drop rule from every node.
    case flushFirewalls
    /// Start a killed node again.
    case restart(node: Int)
    /// `SIGCONT` a stopped node.
    case resume(node: Int)
    /// Start empty replacements of removed nodes with `--join`, add them, promote them.
    case rejoin(nodes: [Int])
}

/// A fault in effect.
struct AppliedFault: Sendable {
    var kind: FaultKind
    /// What was done, e.g. `cut {1,2} from {3,4,5}`.
    var detail: String
    var healing: Healing
}

/// What applying and healing faults needs.
struct FaultContext: Sendable {
    let cluster: Cluster
    let probe: ClusterProbe
    let firewall: Firewall
    var topology: Topology { cluster.topology }

    /// Drops all traffic, both ways, between each pair of nodes in `pairs`.
    func cut(_ pairs: [(Int, Int)]) async throws(HarnessError) {
        var rules: [Int: [Firewall.Rule]] = [:]
        for (a, b) in pairs {
            rules[a, default: []] += [.init(peerAddress: topology.address(b), direction: .fromPeer),
                                      .init(peerAddress: topology.address(b), direction: .toPeer)]
            rules[b, default: []] += [.init(peerAddress: topology.address(a), direction: .fromPeer),
                                      .init(peerAddress: topology.address(a), direction: .toPeer)]
        }
        try await install(rules)
    }

    /// Installs per-node rules, one firewall run per node.
    func install(_ rules: [Int: [Firewall.Rule]]) async throws(HarnessError) {
        let topology = topology
        let firewall = firewall
        try await offload { () throws(HarnessError) in
            for (node, nodeRules) in rules.sorted(by: { $0.key < $1.key }) {
                try firewall.drop(namespace: topology.namespace(node), nodeRules)
            }
        }
    }

    /// Removes every drop rule of every node.
    func flushAll() async throws(HarnessError) {
        let topology = topology
        let firewall = firewall
        try await offload { () throws(HarnessError) in
            for node in topology.nodes { try firewall.heal(namespace: topology.namespace(node)) }
        }
    }

    /// Sends a `MEMBER` command to the leader (following redirects) until it answers `+OK` or an
    /// error containing one of `done` (the change is already in effect), or
    /// `Limits.membershipChangeWait` passes; returns what the last answer was, for the report.
    func membership(_ words: [String], done: [String]) async -> String {
        var configuration = KVClient.Configuration(endpoints: cluster.endpoints)
        configuration.asksForRedirects = true
        let client = KVClient(configuration: configuration)
        defer { Task { await client.close() } }
        let deadline = ContinuousClock.now + Limits.membershipChangeWait
        var last = "no answer"
        while ContinuousClock.now < deadline {
            do {
                _ = try await client.request(words, idempotent: true, timeout: .seconds(5))
                return "\(words[1]) ok"
            } catch {
                last = error.description
                if done.contains(where: { last.contains($0) }) { return "\(words[1]) already done" }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return "\(words[1]) not done within \(Limits.membershipChangeWait): \(last)"
    }

    /// Starts an empty node `node` with `--join`, adds it as a learner and promotes it once it
    /// has caught up (the README's runbook); returns the steps for the report. A node that cannot
    /// be added and promoted ends the run: the cluster would go on short of a voter and every
    /// later verdict would be about another cluster.
    func rejoin(_ node: Int) async throws(HarnessError) -> String {
        try await cluster.start(node, join: true)
        let address = topology.address(node)
        let added = await membership(
            ["MEMBER", "ADD", String(node), "\(address):\(Limits.peerPort)", "\(address):\(Limits.clientPort)"], done: [])
        let promoted = await membership(["MEMBER", "PROMOTE", String(node)], done: ["not a learner"])
        let steps = "node \(node) started empty with --join; \(added); \(promoted)"
        guard !added.contains("not done"), !promoted.contains("not done") else {
            throw .commandFailed(command: "rejoin node \(node)", status: 1, output: steps)
        }
        return steps
    }

    /// The current leader, or a random node when none is known; says which in `how`.
    func leaderOrRandom(_ generator: inout SeededGenerator) async -> (node: Int, how: String) {
        if let leader = await probe.currentLeader() { return (leader.node, "leader \(leader.node)") }
        let node = Int.random(in: topology.nodes, using: &generator)
        return (node, "node \(node) (no leader known)")
    }
}

extension FaultKind {
    /// Applies this fault now; random choices come from `generator`.
    func apply(_ context: FaultContext, _ generator: inout SeededGenerator) async throws(HarnessError) -> AppliedFault {
        let nodes = Array(context.topology.nodes)
        switch self {
        case .majorityMinority:
            let shuffled = nodes.shuffled(using: &generator)
            let minority = Array(shuffled.prefix(nodes.count / 2)).sorted()
            let majority = Array(shuffled.dropFirst(nodes.count / 2)).sorted()
            try await context.cut(pairs(minority, majority))
            return AppliedFault(kind: self, detail: "cut \(show(minority)) from \(show(majority))", healing: .flushFirewalls)
        case .isolateLeader:
            let (leader, how) = await context.leaderOrRandom(&generator)
            let rest = nodes.filter { $0 != leader }
            try await context.cut(pairs([leader], rest))
            return AppliedFault(kind: self, detail: "cut \(how) from \(show(rest))", healing: .flushFirewalls)
        case .bridge:
            let shuffled = nodes.shuffled(using: &generator)
            let bridgeNode = shuffled[0]
            let halves = Array(shuffled.dropFirst())
            let left = Array(halves.prefix(halves.count / 2)).sorted()
            let right = Array(halves.dropFirst(halves.count / 2)).sorted()
            try await context.cut(pairs(left, right))
            return AppliedFault(
                kind: self, detail: "node \(bridgeNode) bridges \(show(left)) and \(show(right))", healing: .flushFirewalls)
        case .oneWayLeaderOut:
            let (leader, how) = await context.leaderOrRandom(&generator)
            let rest = nodes.filter { $0 != leader }
            let rules = rest.map { Firewall.Rule(peerAddress: context.topology.address($0), direction: .toPeer) }
            try await context.install([leader: rules])
            return AppliedFault(kind: self, detail: "drop packets from \(how) to \(show(rest))", healing: .flushFirewalls)
        case .killLeader, .killRandom:
            let (node, how) = await target(leader: self == .killLeader, context, &generator)
            await context.cluster.kill9(node)
            return AppliedFault(kind: self, detail: "kill -9 \(how)", healing: .restart(node: node))
        case .pauseLeader, .pauseRandom:
            let (node, how) = await target(leader: self == .pauseLeader, context, &generator)
            await context.cluster.pause(node)
            return AppliedFault(kind: self, detail: "SIGSTOP \(how)", healing: .resume(node: node))
        case .replaceRandom:
            let leader = await context.probe.currentLeader()?.node
            let followers = nodes.filter { $0 != leader }
            let node = followers.isEmpty ? Int.random(in: context.topology.nodes, using: &generator)
                : followers[Int.random(in: followers.indices, using: &generator)]
            await context.cluster.kill9(node)
            try await context.cluster.wipe(node)
            let removed = await context.membership(["MEMBER", "REMOVE", String(node)], done: ["not a member"])
            return AppliedFault(
                kind: self, detail: "kill -9 node \(node), wipe its data, MEMBER REMOVE: \(removed)", healing: .rejoin(nodes: [node]))
        case .shrinkGrow:
            let leaving = Array(nodes.shuffled(using: &generator).prefix((nodes.count - 1) / 2)).sorted()
            var steps: [String] = []
            for node in leaving {
                let removed = await context.membership(["MEMBER", "REMOVE", String(node)], done: ["not a member"])
                await context.cluster.kill9(node)
                try await context.cluster.wipe(node)
                steps.append("node \(node): \(removed), stopped, data deleted")
            }
            return AppliedFault(
                kind: self, detail: "shrink to \(nodes.count - leaving.count) voters: " + steps.joined(separator: "; "),
                healing: .rejoin(nodes: leaving))
        }
    }

    /// The node a process fault hits: the leader, or a random node.
    private func target(
        leader: Bool, _ context: FaultContext, _ generator: inout SeededGenerator
    ) async -> (node: Int, how: String) {
        if leader { return await context.leaderOrRandom(&generator) }
        let node = Int.random(in: context.topology.nodes, using: &generator)
        let isLeader = await context.probe.currentLeader()?.node == node
        return (node, isLeader ? "node \(node) (the leader)" : "node \(node)")
    }

    private func pairs(_ left: [Int], _ right: [Int]) -> [(Int, Int)] {
        left.flatMap { a in right.map { b in (a, b) } }
    }

    private func show(_ nodes: [Int]) -> String {
        "{" + nodes.map(String.init).joined(separator: ",") + "}"
    }
}

extension AppliedFault {
    /// Undoes the fault; returns what it did when that is worth reporting (a rejoin's steps).
    @discardableResult
    func heal(_ context: FaultContext) async throws(HarnessError) -> String? {
        switch healing {
        case .flushFirewalls: try await context.flushAll()
        case .restart(let node): try await context.cluster.restart(node)
        case .resume(let node): await context.cluster.resume(node)
        case .rejoin(let nodes):
            var steps: [String] = []
            for node in nodes { steps.append(try await context.rejoin(node)) }
            return steps.joined(separator: "; ")
        }
        return nil
    }
}
