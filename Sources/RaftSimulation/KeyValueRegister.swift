public import RaftCore

/// The simulator's replicated state machine: `keyCount` registers, each holding the id of the
/// last write applied to it and the log index that wrote it, plus a digest of every entry
/// applied so far. Small enough to snapshot often (so InstallSnapshot runs in every seed), rich
/// enough for the checker to tell whether a read observed a write.
public struct KeyValueRegister: ReplicatedStateMachine, Hashable, Sendable {
    /// How many registers there are; writes pick one of them.
    public static let keyCount = 8

    /// The last write applied to one register.
    public struct Slot: Hashable, Sendable {
        /// The client's operation id (unique per write in a run).
        public var operation: UInt64
        /// The index of the entry that wrote it.
        public var index: LogIndex
    }

    /// The index of the last entry applied (or of the restored snapshot).
    public private(set) var appliedIndex: LogIndex = .zero
    /// One slot per key; nil until the key is first written.
    public private(set) var slots: [Slot?] = Array(repeating: nil, count: KeyValueRegister.keyCount)
    /// A running hash of every applied entry (index, term, operation), so that two replicas at
    /// the same applied index can be compared in O(1), snapshots included.
    public private(set) var digest: UInt64 = 0

    /// An empty state: nothing applied, every register unwritten.
    public init() {}

    /// Encodes a write of `operation` to register `key`.
    public static func command(operation: UInt64, key: UInt8) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(9)
        appendWord(operation, to: &bytes)
        bytes.append(key)
        return bytes
    }

    /// Decodes a command made by `command(operation:key:)`; nil for anything else.
    public static func decode(_ bytes: [UInt8]) -> (operation: UInt64, key: UInt8)? {
        guard bytes.count == 9, Int(bytes[8]) < keyCount else { return nil }
        return (readWord(bytes, at: 0), bytes[8])
    }

    /// Applies one committed entry; returns the operation it wrote, if it was a write.
    public mutating func apply(_ entry: Entry) throws(StorageError) -> UInt64? {
        guard entry.index == appliedIndex.next else {
            throw .corrupt("apply of index \(entry.index) after applied index \(appliedIndex)")
        }
        appliedIndex = entry.index
        var operation: UInt64?
        if case .command(let bytes) = entry.payload {
            guard let write = Self.decode(bytes) else { throw .corrupt("undecodable command at \(entry.index)") }
            slots[Int(write.key)] = Slot(operation: write.operation, index: entry.index)
            operation = write.operation
        }
        digest = Self.mix(digest, entry.index.rawValue, entry.term.rawValue, operation ?? 0)
        return operation
    }

    /// Serialises applied index, digest and every register (160 bytes, so several chunks).
    public func snapshot() throws(StorageError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 + 17 * Self.keyCount)
        Self.appendWord(appliedIndex.rawValue, to: &bytes)
        Self.appendWord(digest, to: &bytes)
        for slot in slots {
            bytes.append(slot == nil ? 0 : 1)
            Self.appendWord(slot?.operation ?? 0, to: &bytes)
            Self.appendWord(slot?.index.rawValue ?? 0, to: &bytes)
        }
        return bytes
    }

    /// Replaces the state by a snapshot's; refuses data whose index disagrees with its metadata.
    public mutating func restore(_ data: [UInt8], metadata: SnapshotMetadata) throws(StorageError) {
        guard data.count == 16 + 17 * Self.keyCount else { throw .corrupt("snapshot has \(data.count) bytes") }
        let index = LogIndex(Self.readWord(data, at: 0))
        guard index == metadata.lastIncludedIndex else {
            throw .corrupt("snapshot data is at \(index) but its metadata says \(metadata.lastIncludedIndex)")
        }
        var restored = KeyValueRegister()
        restored.appliedIndex = index
        restored.digest = Self.readWord(data, at: 8)
        for key in 0..<Self.keyCount {
            let base = 16 + 17 * key
            if data[base] == 1 {
                restored.slots[key] = Slot(
                    operation: Self.readWord(data, at: base + 1), index: LogIndex(Self.readWord(data, at: base + 9)))
            }
        }
        self = restored
    }

    static func mix(_ seed: UInt64, _ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var generator = SplitMix64(seed: seed ^ (a &* 0x9E37_79B9_7F4A_7C15) ^ (b << 32) ^ (b >> 32) ^ (c &* 31))
        return generator.next()
    }

    static func appendWord(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func readWord(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for byte in 0..<8 { value |= UInt64(bytes[offset + byte]) << UInt64(8 * byte) }
        return value
    }
}
