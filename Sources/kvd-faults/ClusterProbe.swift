import KVProtocol

/// What one node says about itself in `INFO`.
struct NodeInfo: Sendable, Equatable {
    var role: String
    var term: Int
    /// 0 when the node knows no leader.
    var leaderID: Int
}

/// Asks nodes for `INFO`, directly, without redirects.
struct ClusterProbe: Sendable {
    let client: KVClient
    let endpoints: [Int: KVEndpoint]

    init(cluster: Cluster) {
        var configuration = KVClient.Configuration(endpoints: cluster.endpoints)
        configuration.attemptTimeout = Limits.infoTimeout
        configuration.connectTimeout = Limits.infoTimeout
        client = KVClient(configuration: configuration)
        endpoints = Dictionary(uniqueKeysWithValues: cluster.topology.nodes.map { ($0, cluster.endpoint($0)) })
    }

    /// One node's INFO, or nil if it does not answer in time.
    func info(_ node: Int) async -> NodeInfo? {
        guard let endpoint = endpoints[node],
            let reply = try? await client.request(["INFO"], at: endpoint, timeout: Limits.infoTimeout),
            let text = reply.text
        else { return nil }
        let fields = InfoFields.dictionary(text)
        guard let role = fields["role"], let term = fields["term"].flatMap({ Int($0) }),
            let leader = fields["leader_id"].flatMap({ Int($0) })
        else { return nil }
        return NodeInfo(role: role, term: term, leaderID: leader)
    }

    /// INFO of every node, asked concurrently.
    func infoOfAll() async -> [Int: NodeInfo] {
        await withTaskGroup(of: (Int, NodeInfo?).self) { group in
            for node in endpoints.keys { group.addTask { (node, await info(node)) } }
            var result: [Int: NodeInfo] = [:]
            for await (node, info) in group { if let info { result[node] = info } }
            return result
        }
    }

    /// The leader every node in `nodes` names, if they all answer, all name the same node, and
    /// that node says it leads.
    func agreedLeader(among nodes: [Int]) async -> Int? {
        let infos = await infoOfAll()
        var agreed: Int?
        for node in nodes {
            guard let info = infos[node], info.leaderID != 0 else { return nil }
            if let agreed, agreed != info.leaderID { return nil }
            agreed = info.leaderID
        }
        guard let agreed, let leaderInfo = infos[agreed], leaderInfo.role == "leader" else { return nil }
        return agreed
    }

    /// The node that says it leads with the highest term, among those answering.
    func currentLeader() async -> (node: Int, term: Int)? {
        let infos = await infoOfAll()
        return infos.filter { $0.value.role == "leader" }.max { $0.value.term < $1.value.term }.map { ($0.key, $0.value.term) }
    }

    /// Polls until every node in `nodes` agrees on a leader; returns it and how long it took,
    /// or nil after `timeout`.
    func waitForAgreedLeader(among nodes: [Int], timeout: Duration) async -> (leader: Int, waited: Duration)? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let leader = await agreedLeader(among: nodes) { return (leader, ContinuousClock.now - start) }
            try? await Task.sleep(for: Limits.infoPollInterval)
        }
        return nil
    }
}
