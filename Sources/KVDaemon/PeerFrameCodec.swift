public import NIOCore

/// Turns peer bytes into `PeerFrame`s. A bad frame throws, which makes `ByteToMessageHandler` fire
/// `errorCaught`; the connection handlers then log it and close the connection.
public struct PeerFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PeerFrame

    private let parser: PeerFrameParser

    /// A decoder refusing frames longer than `frameBytesMax` (`peer-frame-bytes-max`).
    public init(frameBytesMax: Int) { parser = PeerFrameParser(frameBytesMax: frameBytesMax) }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try parser.next(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // Bytes left at EOF are half a frame from a peer that died mid-write: report, do not guess.
        if buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            throw PeerWireError.truncatedFrame(pending)
        }
        return .needMoreData
    }
}

/// Writes `PeerOutboundFrame`s as length-prefixed frames.
public struct PeerFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = PeerOutboundFrame

    /// An encoder; it trusts its caller (the transport) to keep frames under the limit.
    public init() {}

    public func encode(data: PeerOutboundFrame, out: inout ByteBuffer) throws {
        PeerWire.write(data, to: &out)
    }
}
