/// Log storage in memory, for tests and the simulator. It models a disk with a write cache:
/// `persist(sync: false)` lands in `pending` only, and `crash()` loses everything not yet
/// synced, exactly as a power failure would lose unsynced writes.
public struct MemoryLogStorage: LogStorage, Sendable {
    /// What survives a crash.
    public private(set) var durable: PersistentState
    /// What a read sees: durable state plus unsynced writes.
    public private(set) var pending: PersistentState

    public init(_ initial: PersistentState = PersistentState()) {
        durable = initial
        pending = initial
    }

    public func load() throws(StorageError) -> PersistentState { pending }

    public mutating func persist(
        hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool
    ) throws(StorageError) {
        var next = pending
        if let snapshot { Self.install(snapshot, into: &next) }
        if let first = entries.first {
            let firstStored = next.snapshot?.metadata.lastIncludedIndex.next ?? LogIndex(1)
            let lastStored = next.entries.last?.index ?? firstStored.previous
            guard first.index >= firstStored, first.index <= lastStored.next else {
                throw .corrupt("append at \(first.index) leaves a gap after \(lastStored)")
            }
            next.entries.removeLast(Int(lastStored.rawValue &+ 1 &- first.index.rawValue))
            next.entries.append(contentsOf: entries)
        }
        if let hardState { next.hardState = hardState }
        pending = next
        if sync { durable = pending }
    }

    public mutating func compact(to snapshot: Snapshot) throws(StorageError) {
        Self.install(snapshot, into: &pending)
        durable = pending
    }

    /// Forgets every write that was not synced, as a crash would.
    public mutating func crash() { pending = durable }

    /// Installs a snapshot: entries after it are kept only if the log holds its last entry with
    /// the same term (§7); otherwise the whole log is from another history and is discarded.
    private static func install(_ snapshot: Snapshot, into state: inout PersistentState) {
        let index = snapshot.metadata.lastIncludedIndex
        if let current = state.snapshot, current.metadata.lastIncludedIndex >= index { return }
        if let position = state.entries.firstIndex(where: { $0.index == index }),
            state.entries[position].term == snapshot.metadata.lastIncludedTerm
        {
            state.entries.removeFirst(position + 1)
        } else {
            state.entries.removeAll()
        }
        state.snapshot = snapshot
    }
}
