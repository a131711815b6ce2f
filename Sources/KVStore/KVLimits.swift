/// Every limit of the state machine, named, with a default. The same values must be
/// configured on every replica: they influence what applying an entry does.
public struct KVLimits: Hashable, Sendable {
    /// Longest key, in bytes.
    public var keyBytesMax = 1024
    /// Longest value, in bytes.
    public var valueBytesMax = 1 << 20
    /// Shortest lease TTL; about twice the election timeout, so that a lease survives a failover.
    public var leaseTTLMillisMin: UInt64 = 1000
    /// Longest lease TTL.
    public var leaseTTLMillisMax: UInt64 = 7 * 24 * 3600 * 1000
    /// Most live leases.
    public var leasesMax = 100_000
    /// Most waiters queued on one lock.
    public var lockWaitersMax = 1024
    /// Most live client sessions; registering one more evicts the least recently used.
    public var sessionsMax = 10_000
    /// A session unused for this long (in leader-stamped time) is expired.
    public var sessionTimeoutMillis: UInt64 = 10 * 60 * 1000
    /// Most keys one prefix listing returns.
    public var listLimitMax = 10_000
    /// Most bytes of keys and values one read's reply carries (`MGET`, `LIST`, the reads of one
    /// transaction): a larger reply is refused as it is being built, so one command cannot make
    /// the node hold more than this for it.
    public var replyBytesMax = 64 << 20
    /// Most keys `FLUSHALL` deletes in one entry (applying it holds the Raft loop: about 1 µs a key).
    public var flushKeysMax = 1_000_000

    public init() {}
}
