extension RaftNode {
    /// The last log index this node's driver has made durable: every `Ready` it advanced past
    /// wrote its entries with an fsync. Read it before `takeReady()`: a committed entry at or below
    /// it is already on this node's disk, so the driver may apply it (and answer its client)
    /// before persisting the new `Ready`'s own entries, instead of behind that fsync (see `Ready`).
    ///
    /// A follower that replaced a conflicting suffix of its log since then has new entries at
    /// those indexes, which are not on its disk: the durable index stops below them. Applying
    /// them first and crashing in the write would leave the state machine ahead of a log that
    /// holds other entries there, and the restarted node, taking those for committed, would stop
    /// at the leader's next AppendEntries (a conflict at a committed index).
    public var durableIndex: LogIndex { min(persistedIndex, log.unstableFrom.previous) }
}
