public import NIOCore

/// The server's request parser: RESP multibulk arrays (what Redis clients send) and inline lines
/// (what a person types into `nc`), pipelined, in any fragmentation down to one byte at a time.
///
/// Each request becomes one `[[UInt8]]` argument list. Empty inline lines, `*0` and `*-1` are
/// skipped, as Redis skips them. Anything else that is not valid RESP, or exceeds a
/// `RESPLimits` limit, throws `RESPProtocolError`; the server should answer
/// `-ERR <error.message>` and close the connection, since the stream can no longer be framed.
///
/// Use it in a pipeline as `ByteToMessageHandler(RESPRequestDecoder(limits:))` (created on the
/// channel's event loop, as handlers are not `Sendable`), or call `decodeRequest(_:)` directly.
public struct RESPRequestDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = [[UInt8]]

    /// The limits this decoder enforces.
    public let limits: RESPLimits

    /// Where the parser stands inside the current request.
    private enum Phase: Sendable {
        /// Between requests: the next byte decides between multibulk (`*`) and inline.
        case requestStart
        /// Inside a multibulk request, before the `$` header of the next argument.
        case bulkHeader
        /// Inside a multibulk request, waiting for a payload of this many bytes and its CRLF.
        case bulkPayload(length: Int)
    }

    private var phase = Phase.requestStart
    private var lineReader = RESPLineReader()
    /// Arguments of the multibulk request being read; kept outside `phase` so appends do not copy.
    private var arguments: [[UInt8]] = []
    private var argumentsRemaining = 0
    private var payloadBytes = 0

    /// A decoder enforcing `limits`.
    public init(limits: RESPLimits = RESPLimits()) {
        self.limits = limits
    }

    /// Consumes bytes from `buffer` and returns the next complete request, or `nil` when more
    /// bytes are needed (everything readable has then been consumed or remembered).
    public mutating func decodeRequest(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [[UInt8]]? {
        while true {
            switch phase {
            case .requestStart:
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
                if first == UInt8(ascii: "*") {
                    guard try readMultibulkHeader(&buffer) else { return nil }
                } else {
                    guard let line = try readInlineLine(&buffer) else { return nil }
                    let request = try splitInlineRequest(line[...])
                    if !request.isEmpty { return request }
                }
            case .bulkHeader:
                guard try readBulkHeader(&buffer) else { return nil }
            case .bulkPayload(let length):
                guard let payload = try readRESPBulkPayload(&buffer, length: length) else { return nil }
                arguments.append(payload)
                argumentsRemaining -= 1
                if argumentsRemaining > 0 {
                    phase = .bulkHeader
                } else {
                    return finishRequest()
                }
            }
        }
    }

    /// The user event `decode` fires when it stops inside a request (part of one has arrived),
    /// so a server can bound how long a client may take to finish it.
    public struct PartialRequest: Sendable {
        public init() {}
    }

    /// Whether the bytes consumed so far end between two requests.
    public var isBetweenRequests: Bool {
        if case .requestStart = phase { return true }
        return false
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let request = try decodeRequest(&buffer) else {
            if buffer.readableBytes > 0 || !isBetweenRequests { context.fireUserInboundEventTriggered(PartialRequest()) }
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(request))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        // Complete requests still count; a partial one at EOF is dropped, as the client is gone.
        while let request = try decodeRequest(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(request))
        }
        return .needMoreData
    }

    private mutating func readInlineLine(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [UInt8]? {
        try lineReader.readLine(
            &buffer, ending: .lfOrCRLF, limit: limits.lineBytesMax,
            tooLong: .inlineRequestTooLong(limit: limits.lineBytesMax))
    }

    /// Reads `*<count>`; returns `false` if the line is incomplete.
    private mutating func readMultibulkHeader(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Bool {
        guard
            let line = try lineReader.readLine(
                &buffer, ending: .crlf, limit: limits.lineBytesMax, tooLong: .lineTooLong(limit: limits.lineBytesMax))
        else { return false }
        // As in Redis, a count of zero or below is an empty request, ignored.
        guard let count = parseRESPInteger(Array(line.dropFirst())) else { throw .invalidMultibulkLength }
        guard count <= limits.arrayElementsMax else {
            throw .multibulkLengthTooLarge(length: Int(count), limit: limits.arrayElementsMax)
        }
        if count > 0 {
            argumentsRemaining = Int(count)
            arguments.reserveCapacity(min(Int(count), 1024))
            phase = .bulkHeader
        }
        return true
    }

    /// Reads `$<length>`; returns `false` if the line is incomplete.
    private mutating func readBulkHeader(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> Bool {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return false }
        guard first == UInt8(ascii: "$") else { throw .expectedBulkString(got: first) }
        guard
            let line = try lineReader.readLine(
                &buffer, ending: .crlf, limit: limits.lineBytesMax, tooLong: .lineTooLong(limit: limits.lineBytesMax))
        else { return false }
        guard let length = parseRESPInteger(Array(line.dropFirst())), length >= 0 else {
            throw .invalidBulkLength
        }
        guard length <= limits.bulkBytesMax else {
            throw .bulkLengthTooLarge(length: Int(length), limit: limits.bulkBytesMax)
        }
        payloadBytes += Int(length)
        guard payloadBytes <= limits.messageBytesMax else { throw .messageTooLarge(limit: limits.messageBytesMax) }
        phase = .bulkPayload(length: Int(length))
        return true
    }

    private mutating func finishRequest() -> [[UInt8]] {
        let request = arguments
        arguments = []
        payloadBytes = 0
        phase = .requestStart
        return request
    }
}
