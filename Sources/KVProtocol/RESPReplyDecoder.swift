public import NIOCore

/// The client's reply parser: full RESP2 replies including nested arrays, in any fragmentation
/// down to one byte at a time, enforcing `RESPLimits` (line, bulk, array element, total payload
/// and nesting limits). Scalars are consumed as soon as they are complete, so a large reply is
/// never rescanned from its start.
public struct RESPReplyDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = RESPValue

    /// The limits this decoder enforces.
    public let limits: RESPLimits

    /// An array whose elements are still arriving.
    private struct OpenArray: Sendable {
        var remaining: Int
        var elements: [RESPValue]
    }

    private var lineReader = RESPLineReader()
    private var openArrays: [OpenArray] = []
    private var pendingBulkLength: Int?
    private var payloadBytes = 0
    private var elementCount = 0

    /// A decoder enforcing `limits`.
    public init(limits: RESPLimits = RESPLimits()) {
        self.limits = limits
    }

    /// Consumes bytes from `buffer` and returns the next complete reply, or `nil` when more bytes
    /// are needed.
    public mutating func decodeReply(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> RESPValue? {
        while true {
            let value: RESPValue?
            if let length = pendingBulkLength {
                guard let payload = try readRESPBulkPayload(&buffer, length: length) else { return nil }
                pendingBulkLength = nil
                value = .bulkString(payload)
            } else {
                guard
                    let line = try lineReader.readLine(
                        &buffer, ending: .crlf, limit: limits.lineBytesMax,
                        tooLong: .lineTooLong(limit: limits.lineBytesMax))
                else { return nil }
                value = try parseLine(line)
            }
            if let value, let reply = complete(value) {
                payloadBytes = 0
                elementCount = 0
                return reply
            }
        }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let reply = try decodeReply(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while let reply = try decodeReply(&buffer) {
            context.fireChannelRead(Self.wrapInboundOut(reply))
        }
        if buffer.readableBytes > 0 || !openArrays.isEmpty || pendingBulkLength != nil {
            throw RESPProtocolError.truncated
        }
        return .needMoreData
    }

    /// Parses one line; returns the scalar it holds, or `nil` when it opened a bulk string or a
    /// non-empty array whose contents follow.
    private mutating func parseLine(_ line: [UInt8]) throws(RESPProtocolError) -> RESPValue? {
        guard let marker = line.first else { throw .unknownReplyType(got: 13) }
        let rest = Array(line.dropFirst())
        switch marker {
        case UInt8(ascii: "+"): return .simpleString(String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "-"): return .error(String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: ":"):
            guard let number = parseRESPInteger(rest) else { throw .invalidInteger }
            return .integer(number)
        case UInt8(ascii: "$"):
            guard let length = parseRESPInteger(rest), length >= -1 else { throw .invalidBulkLength }
            if length == -1 { return .nullBulkString }
            guard length <= limits.bulkBytesMax else {
                throw .bulkLengthTooLarge(length: Int(length), limit: limits.bulkBytesMax)
            }
            payloadBytes += Int(length)
            guard payloadBytes <= limits.messageBytesMax else { throw .messageTooLarge(limit: limits.messageBytesMax) }
            pendingBulkLength = Int(length)
            return nil
        case UInt8(ascii: "*"):
            return try openArray(rest)
        default:
            throw .unknownReplyType(got: marker)
        }
    }

    private mutating func openArray(_ header: [UInt8]) throws(RESPProtocolError) -> RESPValue? {
        guard let count = parseRESPInteger(header), count >= -1 else { throw .invalidMultibulkLength }
        if count == -1 { return .nullArray }
        if count == 0 { return .array([]) }
        // The element budget covers the whole reply, so nested arrays cannot multiply it. `count`
        // is checked before it is added: a count near Int64.max would overflow the sum.
        guard count <= limits.arrayElementsMax, elementCount + Int(count) <= limits.arrayElementsMax else {
            throw .multibulkLengthTooLarge(length: Int(count), limit: limits.arrayElementsMax)
        }
        elementCount += Int(count)
        guard openArrays.count < limits.nestingDepthMax else { throw .nestingTooDeep(limit: limits.nestingDepthMax) }
        openArrays.append(OpenArray(remaining: Int(count), elements: []))
        openArrays[openArrays.count - 1].elements.reserveCapacity(min(Int(count), 1024))
        return nil
    }

    /// Adds a finished value to the innermost open array, closing arrays that become full;
    /// returns the whole reply once the outermost value is finished.
    private mutating func complete(_ value: RESPValue) -> RESPValue? {
        var finished = value
        while !openArrays.isEmpty {
            let top = openArrays.count - 1
            openArrays[top].elements.append(finished)
            openArrays[top].remaining -= 1
            guard openArrays[top].remaining == 0 else { return nil }
            finished = .array(openArrays.removeLast().elements)
        }
        return finished
    }
}
