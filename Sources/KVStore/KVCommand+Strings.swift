/// The parts of Redis's string, expiry and transaction commands that travel in log entries
/// (docs/PROTOCOL.md, "Redis commands").

/// What happens to a written key's time to live (`SET`'s and `GETEX`'s options).
public enum KeyExpiry: Hashable, Sendable {
    /// Plain `SET`: any previous time to live is dropped.
    case none
    /// `KEEPTTL`: the key keeps its deadline, if it had one.
    case keep
    /// `EX`/`PX`: this many milliseconds after the command's leader-stamped time.
    case after(millis: UInt64)
    /// `EXAT`/`PXAT`: at this Unix time, in milliseconds.
    case at(unixMillis: UInt64)
}

/// A comparison with a key's current value (`SET ... IFEQ`, `DELEX ... IFNE`).
public enum ValueCondition: Hashable, Sendable {
    /// The key exists and holds exactly these bytes.
    case equal([UInt8])
    /// The key is missing or holds other bytes.
    case notEqual([UInt8])
}

/// When a `SET` takes effect.
public enum SetCondition: Hashable, Sendable {
    case always
    /// `NX`: only if the key does not exist.
    case ifAbsent
    /// `XX`: only if the key exists.
    case ifPresent
    /// `IFEQ`/`IFNE`: only if the value compares as asked.
    case value(ValueCondition)
}

/// `SET key value [NX|XX|IFEQ v|IFNE v] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]`, and the forms built on it
/// (`GETSET`, `SETEX`, `PSETEX`).
public struct SetRequest: Hashable, Sendable {
    public var key: [UInt8]
    public var value: [UInt8]
    public var condition: SetCondition
    public var expiry: KeyExpiry
    /// `GET`: reply with the previous value (nil if none) instead of OK.
    public var returnPrevious: Bool
    public var fence: FenceCondition?

    public init(
        key: [UInt8], value: [UInt8], condition: SetCondition = .always, expiry: KeyExpiry = .none,
        returnPrevious: Bool = false, fence: FenceCondition? = nil
    ) {
        self.key = key
        self.value = value
        self.condition = condition
        self.expiry = expiry
        self.returnPrevious = returnPrevious
        self.fence = fence
    }
}

/// A deadline asked for by `EXPIRE`, `PEXPIRE`, `EXPIREAT` or `PEXPIREAT`. A deadline at or before
/// the command's time deletes the key, as in Redis.
public enum ExpireTime: Hashable, Sendable {
    /// Relative to the command's leader-stamped time; may be negative.
    case after(millis: Int64)
    /// A Unix time in milliseconds; may be in the past.
    case at(unixMillis: Int64)
}

/// `EXPIRE`'s `NX|XX|GT|LT`, which may be combined (`XX LT`) except as Redis forbids (`NX` with
/// any other, `GT` with `LT`). A key without a deadline counts as expiring never (infinitely late).
public struct ExpireCondition: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let always: ExpireCondition = []
    /// `NX`: only if the key has no deadline.
    public static let ifNone = ExpireCondition(rawValue: 1)
    /// `XX`: only if the key has a deadline.
    public static let ifSome = ExpireCondition(rawValue: 2)
    /// `GT`: only if the new deadline is later than the current one.
    public static let ifLater = ExpireCondition(rawValue: 4)
    /// `LT`: only if the new deadline is earlier than the current one.
    public static let ifEarlier = ExpireCondition(rawValue: 8)
    /// Every bit a condition may have.
    static let all: ExpireCondition = [.ifNone, .ifSome, .ifLater, .ifEarlier]
}

/// `GETEX`'s change to the key's deadline.
public enum GetExChange: Hashable, Sendable {
    case keep
    case persist
    case expire(KeyExpiry)
}

/// A key watched by `WATCH`, with the modification index it had then (0: the key did not exist).
/// `EXEC` is refused (null reply) if any watched key's modification index has changed.
public struct WatchedKey: Hashable, Sendable {
    public var key: [UInt8]
    public var modIndex: UInt64
    public init(key: [UInt8], modIndex: UInt64) {
        self.key = key
        self.modIndex = modIndex
    }
}

/// How `TTL` and its relatives report a deadline.
public enum TTLForm: UInt8, Hashable, Sendable {
    /// `TTL`: remaining seconds, rounded.
    case seconds = 0
    /// `PTTL`: remaining milliseconds.
    case millis = 1
    /// `EXPIRETIME`: the Unix time in seconds.
    case unixSeconds = 2
    /// `PEXPIRETIME`: the Unix time in milliseconds.
    case unixMillis = 3
}

/// A read of keys. Served from the applied state at a read index outside transactions; inside a
/// transaction it travels in the transaction's entry, so that it sees the transaction's writes.
public enum KVRead: Hashable, Sendable {
    case get([UInt8])
    case mget([[UInt8]])
    case exists([[UInt8]])
    case strlen([UInt8])
    case type([UInt8])
    case getRange([UInt8], start: Int64, end: Int64)
    case ttl([UInt8], TTLForm)
    case dbsize
    /// `PING [message]` or `ECHO message` inside a transaction: `PONG`, or the message.
    case echo([UInt8]?)
}
