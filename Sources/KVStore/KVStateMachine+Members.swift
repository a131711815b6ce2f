public import RaftCore

/// The members' addresses (`kv_members`), replicated like any other state so that every node,
/// a restarted one and one that joined from a snapshot included, knows where to reach the
/// others and where to send clients. Raft's log keeps who the members are (voters and learners,
/// thesis §4.1); this table keeps only how to reach them. `cluster.conf` seeds it once.
public struct MemberAddresses: Hashable, Sendable {
    /// The member's Raft id.
    public var id: UInt64
    /// Where other nodes connect for Raft traffic (`host:port`).
    public var peer: String
    /// Where clients connect (`host:port`).
    public var client: String
    /// Where `/metrics` and `/health` are served, if anywhere.
    public var metrics: String?
    /// The cluster id of the leader that recorded the row. A cluster restored from another's
    /// backup (which must take a new cluster id) thereby ignores the old cluster's addresses.
    public var clusterID: String

    public init(id: UInt64, peer: String, client: String, metrics: String? = nil, clusterID: String = "") {
        self.id = id
        self.peer = peer
        self.client = client
        self.metrics = metrics
        self.clusterID = clusterID
    }

    func encode(into writer: inout BinaryWriter) {
        writer.write(id); writer.write(Array(peer.utf8)); writer.write(Array(client.utf8))
        writer.write(metrics != nil)
        if let metrics { writer.write(Array(metrics.utf8)) }
        writer.write(Array(clusterID.utf8))
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        id = try reader.readUInt64()
        peer = String(decoding: try reader.readBytes(), as: UTF8.self)
        client = String(decoding: try reader.readBytes(), as: UTF8.self)
        metrics = try reader.readBool() ? String(decoding: try reader.readBytes(), as: UTF8.self) : nil
        clusterID = String(decoding: try reader.readBytes(), as: UTF8.self)
    }
}

extension KVStateMachine {
    /// Every row of `kv_members`, by increasing id.
    public func members() throws(StorageError) -> [MemberAddresses] {
        var members: [MemberAddresses] = []
        do {
            try db.statement("SELECT id, peer, client, metrics, cluster FROM kv_members ORDER BY id").forEachRow(
                [], mapError: { $0 }
            ) { row throws(SQLiteError) in
                members.append(
                    MemberAddresses(
                        id: UInt64(row.int64(at: 0)), peer: row.text(at: 1), client: row.text(at: 2),
                        metrics: row.isNull(at: 3) ? nil : row.text(at: 3), clusterID: row.text(at: 4)))
            }
        } catch { throw error.storageError }
        return members
    }

    /// Records (or replaces) one member's addresses.
    func setMember(_ member: MemberAddresses, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        try db.execute(
            "INSERT OR REPLACE INTO kv_members(id, peer, client, metrics, cluster) VALUES(?, ?, ?, ?, ?)",
            .integer(Int64(bitPattern: member.id)), .text(member.peer), .text(member.client), member.metrics.map { .text($0) } ?? .null,
            .text(member.clusterID))
        events.append(.membersChanged)
        return .ok
    }

    /// Forgets one member's addresses (after Raft removed it from the membership).
    func removeMember(_ id: UInt64, events: inout [KVEvent]) throws(SQLiteError) -> KVResult {
        try db.execute("DELETE FROM kv_members WHERE id = ?", .integer(Int64(bitPattern: id)))
        events.append(.membersChanged)
        return .ok
    }
}
