import RaftCore
import Synchronization

@testable import KVDaemon

/// The simulated disk of one node: a `MemoryLogStorage` (whose `crash()` loses unsynced
/// writes) that also keeps, in its `tap`, the entries a local snapshot compacts away and the
/// highest snapshot index installed from a leader, so that the simulator can read back every
/// entry the driver applied from entries (and skip those it got inside a snapshot).
struct KVSimStorage: LogStorage {
    var inner: MemoryLogStorage
    let tap: KVSimTap

    init(_ inner: MemoryLogStorage = MemoryLogStorage(), tap: KVSimTap = KVSimTap()) {
        self.inner = inner
        self.tap = tap
    }

    func load() throws(StorageError) -> PersistentState { try inner.load() }

    mutating func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws(StorageError) {
        if tap.crashAtNextEntryWrite, !entries.isEmpty {
            // The process dies before this write: whatever the driver sent ahead of it is out.
            tap.crashAtNextEntryWrite = false
            tap.crashedInWrite = true
            throw .io("simulated crash before writing entries \(entries[0].index)...")
        }
        if let snapshot { tap.restoredUpTo = max(tap.restoredUpTo, snapshot.metadata.lastIncludedIndex) }
        try inner.persist(hardState: hardState, entries: entries, snapshot: snapshot, sync: sync)
    }

    mutating func compact(to snapshot: Snapshot) throws(StorageError) {
        // Only the driver's own snapshots come here: they cover entries it applied itself.
        for entry in inner.pending.entries where entry.index <= snapshot.metadata.lastIncludedIndex {
            tap.archive[entry.index.rawValue] = entry
        }
        try inner.compact(to: snapshot)
    }

    /// Forgets unsynced writes, as a power failure would.
    mutating func crash() { inner.crash() }

    /// The entry this node holds (or held before compacting it) at `index`.
    func entry(at index: LogIndex) -> Entry? {
        let entries = inner.pending.entries
        if let first = entries.first?.index, index >= first {
            let offset = Int(index.rawValue - first.rawValue)
            if offset < entries.count, entries[offset].index == index { return entries[offset] }
        }
        return tap.archive[index.rawValue]
    }
}

/// Side information about one node's disk, shared by every copy of its `KVSimStorage` value.
final class KVSimTap {
    /// Entries a local snapshot compacted, by index; they had been applied on this node.
    var archive: [UInt64: Entry] = [:]
    /// The highest snapshot index installed from a leader since the simulator last looked.
    var restoredUpTo: LogIndex = .zero
    /// Crash the process when the driver next writes entries, before the write (for a leader,
    /// after its AppendEntries carrying them left); `crashedInWrite` says it happened.
    var crashAtNextEntryWrite = false
    var crashedInWrite = false
}

/// Where the driver's `Responder`s put replies: they must be `@Sendable`, so the simulator
/// drains this box after every call into a driver (everything runs on one thread; the lock
/// only satisfies the type checker, honestly).
final class KVSimOutbox: Sendable {
    private let replies = Mutex<[(request: Int, reply: Reply)]>([])

    func responder(for request: Int) -> Responder {
        Responder { [self] reply in replies.withLock { $0.append((request, reply)) } }
    }

    func drain() -> [(request: Int, reply: Reply)] {
        replies.withLock { box in
            defer { box.removeAll() }
            return box
        }
    }
}

extension SplitMix64 {
    /// A value in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    /// A value in `range`.
    mutating func within(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// True with probability `perMille / 1000`.
    mutating func chance(_ perMille: Int) -> Bool { below(1000) < perMille }
}
