import Logging
import NIOCore
import RaftCore

extension PeerTransport {
    /// Makes the links match `members` (every member's addresses, this node's included or not):
    /// a new member is dialled, a member whose peer address changed is redialled at the new one,
    /// and a member no longer listed is dropped — its link stops and its connections to this
    /// node are closed with a goodbye naming the reason, and from now on its handshakes are
    /// refused (`handshakeProblem`). Called by the Raft loop whenever the replicated members'
    /// addresses change (`kv_members`, docs/CONFIGURATION.md).
    public func updatePeers(_ members: [ClusterNode]) {
        let wanted = Dictionary(members.filter { $0.id != selfID }.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        let (added, removed, started) = linkTable.withLock { table -> ([PeerLink], [PeerLink], Bool) in
            guard !table.stopped else { return ([], [], false) }
            var added: [PeerLink] = [], removed: [PeerLink] = []
            for (id, link) in table.links where wanted[id]?.peer != link.peer.peer {
                removed.append(link)
                table.links[id] = nil
            }
            for (id, node) in wanted where table.links[id] == nil {
                let link = makeLink(to: node)
                table.links[id] = link
                added.append(link)
            }
            return (added, removed, table.started)
        }
        for link in removed {
            let id = link.peer.id
            if wanted[id] == nil {
                logger.info("peer \(id) is no longer a member; dropping its connections", metadata: ["peer": "\(link.peer.peer)"])
                closeInbound(from: id, reason: "node \(id) is no longer a member of cluster '\(config.clusterID)'")
            } else {
                logger.info("peer \(id) moved; dialling its new address", metadata: ["peer": "\(wanted[id]?.peer.description ?? "")"])
            }
            Task { await link.stop() }
        }
        for link in added {
            logger.info("peer \(link.peer.id) is a member; dialling it", metadata: ["peer": "\(link.peer.peer)"])
            if started { link.eventLoop.execute { link.connect() } }
        }
    }

    /// Closes `peer`'s inbound connections, saying why.
    func closeInbound(from peer: NodeID, reason: String) {
        let channels = state.withLock { state -> [any Channel] in
            let channels = Array((state.established[peer] ?? [:]).values)
            state.replaced.formUnion((state.established[peer] ?? [:]).keys)
            state.established[peer] = nil
            return channels
        }
        for channel in channels { PeerSocket.close(channel, goodbye: reason) }
    }
}

extension ClusterNode {
    /// The node a `kv_members` row describes, or nil if an address in it does not parse (rows are
    /// checked before they are proposed, so only a damaged row is skipped).
    public init?(member id: UInt64, peer: String, client: String, metrics: String?) {
        guard id > 0, let peerAddress = HostPort.parse(Substring(peer)), let clientAddress = HostPort.parse(Substring(client)) else {
            return nil
        }
        let metricsAddress = metrics.flatMap { HostPort.parse(Substring($0)) }
        self.init(id: NodeID(id), peer: peerAddress, client: clientAddress, metrics: metricsAddress, line: 0)
    }
}
