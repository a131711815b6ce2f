#if canImport(Glibc)
import Glibc
#endif
import KVProtocol

/// `INFO [section ...]` (docs/PROTOCOL.md): Redis's sections with the fields clients and tools read,
/// then kvd's own. Redis and kvd would clash on `role` (Redis: `master`/`slave`; kvd: the Raft
/// role): kvd's keeps its name and meaning, so the `replication` section has no `role` line.
extension RaftDriver {
    /// The sections asked for, in kvd's order; no name, `default`, `all` or `everything` means
    /// every section, and an unknown name adds nothing (as in Redis).
    func infoText(sections asked: [String]) -> String {
        let sections: [(name: String, body: () -> String)] = [
            ("server", serverInfoSection),
            ("persistence", { "# Persistence\r\nloading:0\r\naof_enabled:1\r\nrdb_bgsave_in_progress:0\r\n" }),
            ("replication", { "# Replication\r\nconnected_slaves:\(self.node.status.membership.voters.count + self.node.status.membership.learners.count - 1)\r\n" }),
            ("cluster", { "# Cluster\r\ncluster_enabled:0\r\n" }),
            ("kvd", kvdInfoSection),
        ]
        let everything = asked.isEmpty || asked.contains { ["default", "all", "everything"].contains($0) }
        return sections.filter { everything || asked.contains($0.name) }.map { $0.body() }.joined(separator: "\r\n")
    }

    func serverInfoSection() -> String {
        [
            "# Server", "redis_version:\(ClientConnection.redisCompatibleVersion)", "kvd_version:\(KVDVersion.current)",
            "redis_mode:standalone",
            "arch_bits:\(MemoryLayout<Int>.size * 8)", "process_id:\(getpid())",
            "uptime_in_seconds:\((monotonicMillis() - startedAtMillis) / 1000)",
        ].joined(separator: "\r\n") + "\r\n"
    }
}
