/// Durable storage for one node's Raft state: hard state, log entries and the latest snapshot.
/// The driver uses it to load a node at start and to persist each `Ready` (see `Ready`'s
/// contract); the node itself never calls it, so RaftCore stays free of I/O.
///
/// Implementations: `MemoryLogStorage` here (also the simulator's disk) and the SQLite storage
/// in KVStore. Both must pass the same contract tests.
public protocol LogStorage {
    /// Reads back everything persisted so far.
    func load() throws(StorageError) -> PersistentState

    /// Persists the durable part of one `Ready` as one atomic write: the snapshot (if any) first,
    /// then the entries (truncating any stored suffix they conflict with), then the hard state.
    /// When `sync` is true the write is durable when this returns.
    mutating func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?, sync: Bool) throws(StorageError)

    /// Records a snapshot the application took at `snapshot.metadata.lastIncludedIndex` and
    /// discards the entries it covers.
    mutating func compact(to snapshot: Snapshot) throws(StorageError)
}

/// A storage failure. The node must stop: it cannot trust state it could not read or write.
public enum StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stored data is inconsistent (a gap in the log, an unreadable row); `detail` says where.
    case corrupt(String)
    /// The underlying I/O failed (`detail` names the file and the system's message).
    case io(String)

    public var description: String {
        switch self {
        case .corrupt(let detail): return "storage is corrupt: \(detail)"
        case .io(let detail): return "storage I/O failed: \(detail)"
        }
    }
}

/// The replicated state machine (hashicorp/raft's FSM). `apply` must be deterministic: the same
/// entries in the same order give the same state and results on every server, so it must not
/// read clocks or randomness (any time it needs is stamped into the command by the leader).
public protocol ReplicatedStateMachine {
    /// The result of applying one entry, handed back to whoever proposed it.
    associatedtype Result

    /// The index of the last entry applied (or of the restored snapshot).
    var appliedIndex: LogIndex { get }

    /// Applies one committed entry whose index is `appliedIndex + 1`.
    mutating func apply(_ entry: Entry) throws(StorageError) -> Result

    /// Serialises the whole state as of `appliedIndex`.
    func snapshot() throws(StorageError) -> [UInt8]

    /// Replaces the whole state by the one `data` describes, as of `metadata.lastIncludedIndex`.
    mutating func restore(_ data: [UInt8], metadata: SnapshotMetadata) throws(StorageError)
}

/// A small, fast, seedable generator (SplitMix64). RaftCore draws election timeouts from one it
/// owns, seeded by the driver, so a run can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
