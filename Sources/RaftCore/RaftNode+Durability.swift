extension RaftNode {
    /// The last log index this node's driver has made durable: every `Ready` it advanced past
    /// wrote its entries with an fsync. Read it before `takeReady()`: a committed entry at or below
    /// it is already on this node's disk, so the driver may apply it (and answer its client)
    /// before persisting the new `Ready`'s own entries, instead of behind that fsync (see `Ready`).
    public var durableIndex: LogIndex { persistedIndex }
}
