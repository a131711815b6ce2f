public import KVProtocol
public import NIOCore

extension Reply {
    /// The RESP2 form of this reply.
    public var resp: RESPValue {
        switch self {
        case .simple(let text): return .simpleString(text)
        case .error(let text): return .error(text)
        case .integer(let value): return .integer(value)
        case .bulk(let bytes): return bytes.map { .bulkString($0) } ?? .nullBulkString
        case .array(let values): return values.map { .array($0.map(\.resp)) } ?? .nullArray
        case .map(let elements): return .array(elements.map(\.resp))
        case .verbatim(let text): return .bulkString(Array(text.utf8))
        }
    }
}

/// The protocol a client connection speaks: RESP2 until it sends `HELLO 3`.
public enum RESPVersion: Int, Sendable {
    case resp2 = 2
    case resp3 = 3
}

extension ByteBuffer {
    /// Appends `reply` as `version` encodes it. RESP3 differs from RESP2 only where a reply has a
    /// RESP3 type of its own: the null (`_`) for both of RESP2's nil replies, maps (`%`) and
    /// verbatim text (`=`, format `txt`).
    public mutating func writeReply(_ reply: Reply, _ version: RESPVersion) {
        guard version == .resp3 else {
            writeRESPValue(reply.resp)
            return
        }
        switch reply {
        case .simple, .error, .integer, .bulk(.some):
            writeRESPValue(reply.resp)
        case .bulk(.none), .array(.none):
            writeStaticString("_\r\n")
        case .array(.some(let elements)):
            writeString("*\(elements.count)\r\n")
            for element in elements { writeReply(element, version) }
        case .map(let elements):
            writeString("%\(elements.count / 2)\r\n")
            for element in elements { writeReply(element, version) }
        case .verbatim(let text):
            writeString("=\(text.utf8.count + 4)\r\ntxt:")
            writeString(text)
            writeStaticString("\r\n")
        }
    }
}
