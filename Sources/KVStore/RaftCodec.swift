public import RaftCore

/// The compact binary forms in which the SQLite log stores Raft values that are not plain
/// integers: entry payloads and cluster memberships. Every encoding starts with a format version
/// byte, so that a later kvd can change it and still read what an older one wrote; decoding checks
/// every length and throws `StorageError.corrupt` on bytes it did not write, never traps.
///
/// Layouts (integers little-endian):
/// - membership: version `1`, voter count (u32), voters (u64 each, strictly increasing), learner
///   count (u32), learners (u64 each, strictly increasing, none also a voter).
/// - payload: stored as a kind (`noop` 0, `command` 1, `membership` 2) beside its bytes: empty for
///   `noop`, the raw command bytes for `command` (no version byte: they are the application's own
///   versioned encoding), the membership encoding for `membership`.
public enum RaftCodec {
    /// The format version written today.
    public static let version: UInt8 = 1

    /// How a payload kind is stored in the `kind` column of the entries table.
    public enum PayloadKind: Int64, Sendable {
        case noop = 0
        case command = 1
        case membership = 2
    }

    /// The kind and bytes that store `payload`.
    public static func encode(_ payload: Entry.Payload) -> (kind: PayloadKind, bytes: [UInt8]) {
        switch payload {
        case .noop: return (.noop, [])
        case .command(let bytes): return (.command, bytes)
        case .membership(let membership): return (.membership, encode(membership))
        }
    }

    /// The payload stored as `kind` and `bytes`; `context` (e.g. "entry 17 of FILE") goes into the
    /// error message.
    public static func decodePayload(kind: Int64, bytes: [UInt8], context: String) throws(StorageError)
        -> Entry.Payload
    {
        guard let known = PayloadKind(rawValue: kind) else {
            throw .corrupt("\(context): unknown payload kind \(kind)")
        }
        switch known {
        case .noop:
            guard bytes.isEmpty else { throw .corrupt("\(context): a no-op entry carries \(bytes.count) bytes") }
            return .noop
        case .command: return .command(bytes)
        case .membership: return .membership(try decodeMembership(bytes, context: context))
        }
    }

    /// The encoding of `membership` (members sorted, so equal memberships encode equally).
    public static func encode(_ membership: ClusterMembership) -> [UInt8] {
        var bytes: [UInt8] = [version]
        for group in [membership.voters, membership.learners] {
            append(UInt32(group.count), to: &bytes)
            for id in group.sorted() { append(id.rawValue, to: &bytes) }
        }
        return bytes
    }

    /// The membership `bytes` encode; `context` goes into the error message.
    public static func decodeMembership(_ bytes: [UInt8], context: String) throws(StorageError)
        -> ClusterMembership
    {
        var reader = Reader(bytes: bytes, context: "\(context): membership")
        let format = try reader.byte()
        guard format == version else { throw .corrupt("\(context): membership format version \(format) is unknown") }
        let voters = try reader.sortedIDs()
        let learners = try reader.sortedIDs()
        try reader.expectEnd()
        let voterSet = Set(voters)
        let learnerSet = Set(learners)
        // ClusterMembership's initialiser traps on an overlap; damaged bytes must not crash the node.
        guard voterSet.isDisjoint(with: learnerSet) else {
            throw .corrupt("\(context): membership lists a node as both voter and learner")
        }
        return ClusterMembership(voters: voterSet, learners: learnerSet)
    }

    private static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// A bounds-checked cursor over stored bytes.
    private struct Reader {
        let bytes: [UInt8]
        let context: String
        var offset = 0

        init(bytes: [UInt8], context: String) {
            self.bytes = bytes
            self.context = context
        }

        mutating func take(_ count: Int) throws(StorageError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else {
                throw .corrupt("\(context) is truncated: needs \(count) bytes at offset \(offset) of \(bytes.count)")
            }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        mutating func byte() throws(StorageError) -> UInt8 {
            try take(1).first ?? 0
        }

        mutating func uint(_ width: Int) throws(StorageError) -> UInt64 {
            var value: UInt64 = 0
            for (position, byte) in try take(width).enumerated() { value |= UInt64(byte) << UInt64(8 * position) }
            return value
        }

        /// A u32 count followed by that many strictly increasing u64 node ids.
        mutating func sortedIDs() throws(StorageError) -> [NodeID] {
            let count = try uint(4)
            // Check the count against the bytes left before allocating anything for it.
            guard count <= UInt64(bytes.count - offset) / 8 else {
                throw .corrupt("\(context) claims \(count) members but holds \(bytes.count - offset) bytes")
            }
            var ids: [NodeID] = []
            ids.reserveCapacity(Int(count))
            for _ in 0..<count {
                let id = NodeID(try uint(8))
                guard ids.last.map({ $0 < id }) ?? true else {
                    throw .corrupt("\(context) lists node ids out of order or repeated")
                }
                ids.append(id)
            }
            return ids
        }

        func expectEnd() throws(StorageError) {
            guard offset == bytes.count else {
                throw .corrupt("\(context) has \(bytes.count - offset) unexpected trailing bytes")
            }
        }
    }
}
