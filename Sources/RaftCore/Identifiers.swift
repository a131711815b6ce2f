/// A Raft term (§5.1): a logical clock that increases monotonically; each term has at most one leader.
public struct Term: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }

    /// Term zero precedes every election; no entry is ever written in it.
    public static let zero = Term(0)

    /// The term that follows this one.
    public var next: Term { Term(rawValue + 1) }

    public static func < (lhs: Term, rhs: Term) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// A position in the replicated log (§5.3). Index 0 is the empty prefix; the first entry has index 1.
public struct LogIndex: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral, Strideable
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }

    /// The empty prefix of every log.
    public static let zero = LogIndex(0)

    /// The index after this one.
    public var next: LogIndex { LogIndex(rawValue + 1) }
    /// The index before this one; the empty prefix has no predecessor and stays at zero.
    public var previous: LogIndex { LogIndex(rawValue == 0 ? 0 : rawValue - 1) }

    public static func < (lhs: LogIndex, rhs: LogIndex) -> Bool { lhs.rawValue < rhs.rawValue }
    public func distance(to other: LogIndex) -> Int64 { Int64(bitPattern: other.rawValue &- rawValue) }
    public func advanced(by n: Int64) -> LogIndex { LogIndex(UInt64(bitPattern: Int64(bitPattern: rawValue) &+ n)) }
    public var description: String { String(rawValue) }
}

/// The identity of one server in the cluster. Zero is reserved for "no node".
public struct NodeID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt64) { self.rawValue = value }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}
