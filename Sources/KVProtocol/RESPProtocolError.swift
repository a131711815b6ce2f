/// A byte stream that is not valid RESP2, or that exceeds a `RESPLimits` limit.
///
/// After one of these the stream cannot be framed any further: the server replies
/// `-ERR <message>` and closes the connection; a client closes it too.
public enum RESPProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A `*` header that is not an integer, or is below -1.
    case invalidMultibulkLength
    /// A `*` header above `RESPLimits.arrayElementsMax`.
    case multibulkLengthTooLarge(length: Int, limit: Int)
    /// A request argument that does not start with `$`.
    case expectedBulkString(got: UInt8)
    /// A `$` header that is not an integer, or is negative in a request (below -1 in a reply).
    case invalidBulkLength
    /// A `$` header above `RESPLimits.bulkBytesMax`.
    case bulkLengthTooLarge(length: Int, limit: Int)
    /// A line (header, simple string, error or integer) not ended by CRLF, or a bulk payload not
    /// followed by CRLF.
    case expectedCRLF
    /// A header or reply line longer than `RESPLimits.lineBytesMax`.
    case lineTooLong(limit: Int)
    /// An inline request line longer than `RESPLimits.lineBytesMax`.
    case inlineRequestTooLong(limit: Int)
    /// An inline request with an unterminated `"` or `'`, or a closing quote not followed by a
    /// space.
    case unbalancedQuotes
    /// One request or reply whose bulk payloads add up to more than `RESPLimits.messageBytesMax`.
    case messageTooLarge(limit: Int)
    /// A reply nested deeper than `RESPLimits.nestingDepthMax`.
    case nestingTooDeep(limit: Int)
    /// A reply starting with a byte that is not a RESP2 type marker.
    case unknownReplyType(got: UInt8)
    /// A `:` reply that is not a 64-bit integer.
    case invalidInteger
    /// The connection closed in the middle of a request or reply.
    case truncated

    /// The message the server sends after `-ERR `, in Redis's wording where Redis has one.
    public var message: String {
        switch self {
        case .invalidMultibulkLength: return "Protocol error: invalid multibulk length"
        case .multibulkLengthTooLarge(let length, let limit):
            return "Protocol error: invalid multibulk length \(length): the limit is \(limit)"
        case .expectedBulkString(let byte): return "Protocol error: expected '$', got '\(Self.printable(byte))'"
        case .invalidBulkLength: return "Protocol error: invalid bulk length"
        case .bulkLengthTooLarge(let length, let limit):
            return "Protocol error: invalid bulk length \(length): the limit is \(limit) bytes"
        case .expectedCRLF: return "Protocol error: expected CRLF"
        case .lineTooLong(let limit): return "Protocol error: too big count string (over \(limit) bytes)"
        case .inlineRequestTooLong(let limit): return "Protocol error: too big inline request (over \(limit) bytes)"
        case .unbalancedQuotes: return "Protocol error: unbalanced quotes in request"
        case .messageTooLarge(let limit): return "Protocol error: request larger than \(limit) bytes"
        case .nestingTooDeep(let limit): return "Protocol error: reply nested deeper than \(limit) arrays"
        case .unknownReplyType(let byte): return "Protocol error: unknown reply type '\(Self.printable(byte))'"
        case .invalidInteger: return "Protocol error: invalid integer"
        case .truncated: return "Protocol error: connection closed in the middle of a message"
        }
    }

    public var description: String { message }

    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7e).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
}
