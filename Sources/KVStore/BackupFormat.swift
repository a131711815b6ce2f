public import RaftCore

/// The backup file `kvctl snapshot save` writes and `kvd --restore-from` reads (docs/PROTOCOL.md,
/// "Backups"): the state as of one applied index, as the chunks a leader streams to a follower
/// (`StateSnapshotFormat`), framed and described so that a file can be checked on its own.
/// ```
/// 8 bytes  magic "KVDBAK1\n"
/// u32      header length (at most `headerBytesMax`), little-endian
/// header   text lines "name value" (`BackupMetadata`)
/// u64      checksum of the header bytes
/// frames   u32 length (1 ... `chunkBytesMax`), then one chunk (it carries its own checksum)
/// u32      0: the end of the chunks
/// trailer  u64 chunk count, u64 row count, u64 digest of every chunk's checksum in order,
///          u64 checksum of those 24 bytes
/// ```
/// Nothing may follow the trailer. A file without its trailer is incomplete (truncated), and
/// the digest catches chunks dropped, repeated or reordered in between.
public enum BackupFormat {
    /// The file format this code writes and reads.
    public static let version = 1
    /// The first bytes of every backup file.
    public static let magic: [UInt8] = Array("KVDBAK1\n".utf8)
    /// Longest header: a few short lines and a membership.
    public static let headerBytesMax = 64 * 1024
    /// Longest chunk a file may hold: a chunk is at most `snapshot-chunk-bytes` (at most 64 MiB),
    /// or one larger row alone, which is bounded by `request-bytes-max` (at most 128 MiB).
    public static let chunkBytesMax = 192 << 20

    /// The digest after one more chunk whose trailing checksum is `chunkChecksum`.
    static func fold(_ digest: UInt64, _ chunk: [UInt8]) -> UInt64 {
        var bytes = littleEndian(digest)
        bytes += chunk.suffix(8)
        return StateSnapshotFormat.checksum(bytes[...])
    }

    static func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    static func littleEndian32(_ value: Int) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    static func uint64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        for (shift, byte) in bytes.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    static func uint32(_ bytes: ArraySlice<UInt8>) -> Int {
        var value = 0
        for (shift, byte) in bytes.prefix(4).enumerated() { value |= Int(byte) << (8 * shift) }
        return value
    }
}

/// What a backup describes: where and when the state was taken, and as of which entry.
public struct BackupMetadata: Hashable, Sendable {
    /// The cluster the backup was taken from (its configuration's `cluster-id`).
    public var clusterID: String
    /// The node that served it (the leader at the time).
    public var sourceNode: NodeID
    /// The state's applied index: every fencing token and lease id in it is at most this.
    public var appliedIndex: LogIndex
    /// The term of the entry at `appliedIndex`.
    public var term: Term
    /// The membership in force at `appliedIndex`.
    public var membership: ClusterMembership
    /// Wall-clock milliseconds since 1970 when the node opened the read transaction.
    public var createdMillis: UInt64
    /// The state schema version (`kv_meta.schema_version`) of the rows.
    public var schemaVersion: Int64

    public init(
        clusterID: String, sourceNode: NodeID, appliedIndex: LogIndex, term: Term, membership: ClusterMembership,
        createdMillis: UInt64, schemaVersion: Int64
    ) {
        self.clusterID = clusterID
        self.sourceNode = sourceNode
        self.appliedIndex = appliedIndex
        self.term = term
        self.membership = membership
        self.createdMillis = createdMillis
        self.schemaVersion = schemaVersion
    }

    /// The schema version this kvd writes (a restore needs the same).
    public static var currentSchemaVersion: Int64 { KVSchema.version }

    /// The header text: one "name value" line per field.
    public var text: String {
        func ids(_ set: Set<NodeID>) -> String { set.map(\.rawValue).sorted().map(String.init).joined(separator: ",") }
        return [
            "format \(BackupFormat.version)", "chunk-format \(StateSnapshotFormat.version)",
            "schema-version \(schemaVersion)", "cluster-id \(clusterID)", "source-node \(sourceNode.rawValue)",
            "applied-index \(appliedIndex.rawValue)", "term \(term.rawValue)",
            "voters \(ids(membership.voters))", "learners \(ids(membership.learners))", "created-ms \(createdMillis)",
        ].joined(separator: "\n") + "\n"
    }

    /// Parses a header; unknown names are ignored (a later version may add some), missing or
    /// malformed ones are an error naming them.
    public static func parse(_ text: String) throws(BackupFileError.Reason) -> BackupMetadata {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        func number(_ name: String) throws(BackupFileError.Reason) -> UInt64 {
            guard let value = fields[name].flatMap({ UInt64($0) }) else { throw .malformed("header field '\(name)' is missing or not a number") }
            return value
        }
        func ids(_ name: String) throws(BackupFileError.Reason) -> Set<NodeID> {
            guard let list = fields[name] else { throw .malformed("header field '\(name)' is missing") }
            var set: Set<NodeID> = []
            for word in list.split(separator: ",") {
                guard let id = UInt64(word), id > 0 else { throw .malformed("header field '\(name)' has a bad node id '\(word)'") }
                set.insert(NodeID(id))
            }
            return set
        }
        let format = try number("format")
        guard format == UInt64(BackupFormat.version) else { throw .unsupported("file format \(format), this kvd reads \(BackupFormat.version)") }
        let chunkFormat = try number("chunk-format")
        guard chunkFormat == UInt64(StateSnapshotFormat.version) else {
            throw .unsupported("chunk format \(chunkFormat), this kvd reads \(StateSnapshotFormat.version)")
        }
        guard let cluster = fields["cluster-id"], !cluster.isEmpty else { throw .malformed("header field 'cluster-id' is missing") }
        let voters = try ids("voters"), learners = try ids("learners")
        guard !voters.isEmpty, voters.isDisjoint(with: learners) else { throw .malformed("header membership is invalid") }
        return BackupMetadata(
            clusterID: cluster, sourceNode: NodeID(try number("source-node")), appliedIndex: LogIndex(try number("applied-index")),
            term: Term(try number("term")), membership: ClusterMembership(voters: voters, learners: learners),
            createdMillis: try number("created-ms"), schemaVersion: Int64(clamping: try number("schema-version")))
    }
}

/// Why a backup file cannot be written or read; `description` is one line naming the file.
public struct BackupFileError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Error, Hashable, Sendable {
        /// The file system failed (cannot open, write, fsync, rename; disk full).
        case io(String)
        /// The file ends before its trailer.
        case truncated(String)
        /// A checksum, a count or the framing does not match: the file is damaged.
        case corrupt(String)
        /// A field is missing or out of range.
        case malformed(String)
        /// Written by another version of the format.
        case unsupported(String)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, _ reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .io(let detail): return "\(path): \(detail)"
        case .truncated(let detail): return "\(path): truncated backup (\(detail))"
        case .corrupt(let detail): return "\(path): corrupt backup (\(detail))"
        case .malformed(let detail): return "\(path): not a valid backup (\(detail))"
        case .unsupported(let detail): return "\(path): unsupported backup (\(detail))"
        }
    }
}
