public import RaftCore

/// One write to the replicated state machine, as carried in a Raft entry. The leader stamps its
/// wall-clock time into every command, so that applying never reads a clock and every replica
/// computes the same state.
public struct KVCommand: Hashable, Sendable {
    /// Client session and sequence number, for exactly-once retries (thesis §6.3).
    public var session: SessionStamp?
    /// Leader's wall clock in milliseconds when it proposed the command.
    public var timestampMillis: UInt64
    public var operation: KVOperation
    /// The node a follower's client wrote through, when the follower forwarded the command to
    /// the leader (docs/PROTOCOL.md, "Followers"): that node answers its client when it applies
    /// the entry itself. Nil for commands proposed where the client is.
    public var origin: ProposalOrigin?

    public init(session: SessionStamp? = nil, timestampMillis: UInt64, operation: KVOperation, origin: ProposalOrigin? = nil) {
        self.session = session
        self.timestampMillis = timestampMillis
        self.operation = operation
        self.origin = origin
    }
}

/// Which node proposed a forwarded command, and which of its forwards it is: the follower cannot
/// know the log index the leader will give it, so it recognises its entry by this tag.
public struct ProposalOrigin: Hashable, Sendable {
    public var nodeID: UInt64
    /// Unique among the node's forwards, across restarts too (see `RaftDriver.forwardSequence`).
    public var sequence: UInt64
    public init(nodeID: UInt64, sequence: UInt64) {
        self.nodeID = nodeID
        self.sequence = sequence
    }
}

/// A client session's stamp on one write: the write is applied at most once per
/// `(clientID, sequence)`; a retry gets the reply kept for it.
public struct SessionStamp: Hashable, Sendable {
    public var clientID: UInt64
    public var sequence: UInt64
    public init(clientID: UInt64, sequence: UInt64) {
        self.clientID = clientID
        self.sequence = sequence
    }
}

/// A write that only takes effect while lock `lock` is held with fencing token `token`.
public struct FenceCondition: Hashable, Sendable {
    public var lock: [UInt8]
    public var token: UInt64
    public init(lock: [UInt8], token: UInt64) {
        self.lock = lock
        self.token = token
    }
}

/// Redis's SET conditions.
public enum PutCondition: UInt8, Hashable, Sendable {
    case always = 0
    /// NX: only if the key does not exist.
    case ifAbsent = 1
    /// XX: only if the key exists.
    case ifPresent = 2
}

/// What a compare-and-swap compares with.
public enum CASExpectation: Hashable, Sendable {
    /// The key holds exactly this value.
    case value([UInt8])
    /// The key does not exist.
    case absent
    /// The key was last modified by the entry at this log index.
    case modIndex(UInt64)
}

/// Remaining time of one lease at a leader's checkpoint.
public struct LeaseCheckpoint: Hashable, Sendable {
    public var leaseID: UInt64
    /// The renewal epoch the remaining time was computed for; a later keepalive wins.
    public var epoch: UInt64
    public var remainingMillis: UInt64
    public init(leaseID: UInt64, epoch: UInt64, remainingMillis: UInt64) {
        self.leaseID = leaseID
        self.epoch = epoch
        self.remainingMillis = remainingMillis
    }
}

/// The operations of the state machine. Reads are not here: they are served from the applied
/// state at a read index, without a log entry.
public enum KVOperation: Hashable, Sendable {
    case put(key: [UInt8], value: [UInt8], condition: PutCondition, lease: UInt64?, fence: FenceCondition?)
    case delete(keys: [[UInt8]], fence: FenceCondition?)
    case compareAndSwap(key: [UInt8], expected: CASExpectation, value: [UInt8], fence: FenceCondition?)
    case increment(key: [UInt8], delta: Int64, fence: FenceCondition?)
    /// Grants a lease whose id is the log index of this entry.
    case leaseGrant(ttlMillis: UInt64)
    case leaseKeepAlive(leaseID: UInt64)
    case leaseRevoke(leaseID: UInt64)
    /// Proposed only by a leader: ends the lease unless it was renewed (`epoch` moved) or a
    /// newer leader has been elected since (`leaderTerm` is stale).
    case leaseExpire(leaseID: UInt64, leaderTerm: UInt64, epoch: UInt64)
    /// Proposed only by a leader: records remaining TTLs so that elections cannot renew leases.
    case leaseCheckpoint(leaderTerm: UInt64, checkpoints: [LeaseCheckpoint])
    /// Acquires `name` for `lease`; queues in FIFO order if `wait` and the lock is held.
    case lockAcquire(name: [UInt8], leaseID: UInt64, wait: Bool)
    case lockRelease(name: [UInt8], token: UInt64)
    /// Raises fence register `name` to `token`, refusing tokens below its highest.
    case fence(name: [UInt8], token: UInt64)
    /// Opens a client session whose id is the log index of this entry.
    case sessionRegister
    /// Redis's `SET` with every option (plain `SET`s without options travel as `put`).
    case set(SetRequest)
    case expire(key: [UInt8], at: ExpireTime, condition: ExpireCondition)
    case persist(key: [UInt8])
    case getEx(key: [UInt8], change: GetExChange)
    /// `GETDEL`: the value, then the key is deleted.
    case getDelete(key: [UInt8])
    /// `DELEX key IFEQ|IFNE value`, `DELIFEQ key value`.
    case deleteIf(key: [UInt8], condition: ValueCondition, fence: FenceCondition?)
    case append(key: [UInt8], value: [UInt8], fence: FenceCondition?)
    case setRange(key: [UInt8], offset: UInt64, value: [UInt8], fence: FenceCondition?)
    case incrementFloat(key: [UInt8], delta: Double, fence: FenceCondition?)
    /// `RENAME`/`RENAMENX`: moves the value, its lease and its deadline.
    case rename(from: [UInt8], to: [UInt8], onlyIfAbsent: Bool)
    /// `COPY source destination [REPLACE]`: the copy gets the deadline but not the lease.
    case copy(from: [UInt8], to: [UInt8], replace: Bool)
    /// `MSET`/`MSETNX` (`onlyIfNoneExist`): keys and values alternating.
    case multiSet(pairs: [[UInt8]], onlyIfNoneExist: Bool)
    /// `FLUSHDB`/`FLUSHALL`: deletes every key. Leases, locks, fence registers and sessions stay.
    case flush
    /// Proposed only by a leader: deletes those of `keys` whose deadline has passed by the
    /// entry's time (a key given a later deadline since stays).
    case expireKeys([[UInt8]])
    /// `MULTI ... EXEC`: `operations` applied in order in one entry, unless a watched key changed.
    case transaction(operations: [KVOperation], watches: [WatchedKey])
    /// A read inside a transaction.
    case read(KVRead)
    /// Records a member's addresses in `kv_members` (docs/PROTOCOL.md `MEMBER ADD`).
    case memberSet(MemberAddresses)
    /// Forgets a removed member's addresses.
    case memberRemove(id: UInt64)
}

/// The reply to one applied command. Kept per session, so it is encodable.
public enum KVResult: Hashable, Sendable {
    case ok
    /// A conditional SET whose condition did not hold (Redis replies nil).
    case notApplied
    case deleted(count: Int64)
    /// Compare-and-swap outcome and the key's modification index afterwards (0 if absent).
    case swapped(Bool, modIndex: UInt64)
    case integer(Int64)
    case leaseGranted(leaseID: UInt64, ttlMillis: UInt64)
    case leaseRenewed(ttlMillis: UInt64)
    case leaseRevoked
    case lockGranted(token: UInt64)
    /// The lock is held; the request waits at `position` (1 = next) and is told when granted.
    case lockQueued(position: Int64)
    /// The lock is held by another lease and the request did not want to wait.
    case lockBusy(holderToken: UInt64)
    case lockReleased
    case fenceAccepted(token: UInt64)
    case sessionRegistered(clientID: UInt64)
    /// A value, or nil (a bulk reply).
    case value([UInt8]?)
    /// Values, any of them nil (`MGET`).
    case values([[UInt8]?])
    /// A status word (`TYPE`'s `string`/`none`).
    case status(String)
    /// Each operation's result in order, or nil if a watched key changed (nothing was applied).
    case transaction([KVResult]?)
    /// Internal commands (expiry, checkpoint) and no-ops.
    case none
    case error(KVError)
}

/// A definite refusal: the command had no effect.
public enum KVError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A fenced write whose token no longer holds the lock, or a fence token below the highest seen.
    case stale(String)
    case notInteger
    case overflow
    case leaseNotFound(UInt64)
    case ttlTooShort(minimumMillis: UInt64)
    case lockNotHeld
    /// The session expired or never existed; register a new one. Nothing was applied.
    case sessionExpired(UInt64)
    /// A retry of a request older than the one whose reply is kept; its reply is gone.
    case sequenceTooOld(UInt64)
    case limitExceeded(String)
    /// A refusal with Redis's own message (for example `no such key`, `value is not a valid float`).
    case invalid(String)

    /// The first word of the RESP error.
    public var code: String {
        switch self {
        case .stale: return "STALE"
        case .sessionExpired: return "SESSIONEXPIRED"
        case .notInteger, .overflow, .leaseNotFound, .ttlTooShort, .lockNotHeld, .sequenceTooOld, .limitExceeded, .invalid:
            return "ERR"
        }
    }

    public var description: String {
        switch self {
        case .stale(let why): return why
        case .notInteger: return "value is not an integer or out of range"
        case .overflow: return "increment or decrement would overflow"
        case .leaseNotFound(let id): return "lease \(id) not found"
        case .ttlTooShort(let minimum): return "TTL below the minimum of \(minimum) ms"
        case .lockNotHeld: return "lock is not held with that token"
        case .sessionExpired(let id): return "session \(id) expired; register a new session"
        case .sequenceTooOld(let sequence): return "request \(sequence) is older than the last reply kept"
        case .limitExceeded(let what): return what
        case .invalid(let why): return why
        }
    }
}

/// Something that happened to others while applying one entry, for the daemon to act on:
/// wake a lock waiter, count an expiry.
public enum KVEvent: Hashable, Sendable {
    case leaseGranted(leaseID: UInt64, ttlMillis: UInt64)
    /// A keepalive moved the lease to `epoch` with a full TTL again.
    case leaseRenewed(leaseID: UInt64, epoch: UInt64, ttlMillis: UInt64)
    case lockGranted(name: [UInt8], leaseID: UInt64, token: UInt64)
    case leaseEnded(leaseID: UInt64, expired: Bool)
    case sessionExpired(clientID: UInt64)
    /// `kv_members` changed: the transport and the client redirects follow it.
    case membersChanged
}

/// The outcome of applying one entry.
public struct KVApplied: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
    public var result: KVResult
    public var events: [KVEvent]
    /// The command's origin tag, when a follower forwarded it.
    public var origin: ProposalOrigin? = nil
}
