public import KVProtocol

extension Reply {
    /// The RESP2 form of this reply.
    public var resp: RESPValue {
        switch self {
        case .simple(let text): return .simpleString(text)
        case .error(let text): return .error(text)
        case .integer(let value): return .integer(value)
        case .bulk(let bytes): return bytes.map { .bulkString($0) } ?? .nullBulkString
        case .array(let values): return values.map { .array($0.map(\.resp)) } ?? .nullArray
        }
    }
}
