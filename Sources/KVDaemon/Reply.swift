import KVStore
public import RaftCore

/// A reply to one client command, before it is encoded as RESP2 or RESP3.
public enum Reply: Hashable, Sendable {
    case simple(String)
    /// An error whose first word is its code (docs/PROTOCOL.md).
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([Reply]?)
    /// Keys and values alternating: a RESP3 map (`%`), or a flat array in RESP2 (as Redis does).
    case map([Reply])
    /// Text for people (`INFO`): a RESP3 verbatim string of format `txt`, a bulk string in RESP2.
    case verbatim(String)

    public static let ok = Reply.simple("OK")
    public static let null = Reply.bulk(nil)

    /// `-NOTLEADER <id> <address>`: definite; retry at the leader.
    public static func notLeader(_ leader: NodeID?, address: String?) -> Reply {
        guard let leader, let address else { return .error("NOTLEADER unknown unknown") }
        return .error("NOTLEADER \(leader) \(address)")
    }

    /// `-TIMEOUT`: indeterminate.
    public static func timeout(_ detail: String) -> Reply { .error("TIMEOUT \(detail)") }

    /// `-UNAVAILABLE`: indeterminate.
    public static func unavailable(_ detail: String) -> Reply { .error("UNAVAILABLE \(detail)") }

    /// `-ERR`: definite.
    public static func err(_ detail: String) -> Reply { .error("ERR \(detail)") }

    /// The reply to an applied write, shaped as the command that asked for it expects.
    static func from(_ result: KVResult, style: ClientCommand.WriteReplyStyle) -> Reply {
        switch result {
        case .ok where style == .setFlag: return .integer(1)
        case .notApplied where style == .setFlag: return .integer(0)
        case .ok, .leaseRevoked, .lockReleased: return .ok
        case .notApplied, .none: return .null
        case .deleted(let count): return .integer(count)
        case .swapped(let swapped, _): return .integer(swapped ? 1 : 0)
        case .integer(let value): return .integer(value)
        case .leaseGranted(let id, _): return .integer(Int64(clamping: id))
        case .leaseRenewed(let ttl):
            return style == .ttlSeconds ? .integer(Int64(clamping: (ttl + 999) / 1000)) : .integer(Int64(clamping: ttl))
        case .lockGranted(let token): return .integer(Int64(clamping: token))
        case .lockQueued(let position): return .integer(-position)
        case .lockBusy(let token): return .error("LOCKED \(token)")
        case .fenceAccepted(let token): return .integer(Int64(clamping: token))
        case .sessionRegistered(let id): return .integer(Int64(clamping: id))
        case .value(let value): return .bulk(value)
        case .values(let values): return .array(values.map { .bulk($0) })
        case .status(let word): return .simple(word)
        case .transaction(let results):
            guard let results else { return .array(nil) }
            guard case .transaction(let styles) = style, styles.count == results.count else {
                return .array(results.map { from($0, style: .standard) })
            }
            return .array(zip(results, styles).map { from($0, style: $1) })
        case .error(let error): return .error("\(error.code) \(error.description)")
        }
    }
}
