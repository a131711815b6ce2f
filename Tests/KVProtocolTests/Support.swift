import KVProtocol
import NIOCore
import NIOEmbedded
import Testing

/// Bytes of an ASCII/UTF-8 string.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Feeds `input` through a `RESPRequestDecoder` in an `EmbeddedChannel`, `chunk` bytes at a time,
/// and returns every request it produced, or the protocol error it raised.
func decodeRequests(
    _ input: [UInt8],
    chunk: Int = 1,
    limits: RESPLimits = RESPLimits()
) throws -> [[[UInt8]]] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPRequestDecoder(limits: limits)))
    defer { _ = try? channel.finish() }
    var requests: [[[UInt8]]] = []
    var offset = 0
    while offset < input.count {
        let end = min(offset + chunk, input.count)
        try channel.writeInbound(channel.allocator.buffer(bytes: input[offset..<end]))
        while let request = try channel.readInbound(as: [[UInt8]].self) {
            requests.append(request)
        }
        offset = end
    }
    return requests
}

/// Feeds `input` through a `RESPReplyDecoder` in an `EmbeddedChannel`, `chunk` bytes at a time.
func decodeReplies(
    _ input: [UInt8],
    chunk: Int = 1,
    limits: RESPLimits = RESPLimits()
) throws -> [RESPValue] {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder(limits: limits)))
    defer { _ = try? channel.finish() }
    var replies: [RESPValue] = []
    var offset = 0
    while offset < input.count {
        let end = min(offset + chunk, input.count)
        try channel.writeInbound(channel.allocator.buffer(bytes: input[offset..<end]))
        while let reply = try channel.readInbound(as: RESPValue.self) {
            replies.append(reply)
        }
        offset = end
    }
    return replies
}

/// The protocol error that decoding `input` raises, or `nil` if it raises none.
func requestError(_ input: [UInt8], chunk: Int = 1, limits: RESPLimits = RESPLimits()) -> RESPProtocolError? {
    do {
        _ = try decodeRequests(input, chunk: chunk, limits: limits)
        return nil
    } catch let error as RESPProtocolError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// The protocol error that decoding reply bytes raises, or `nil` if it raises none.
func replyError(_ input: [UInt8], chunk: Int = 1, limits: RESPLimits = RESPLimits()) -> RESPProtocolError? {
    do {
        _ = try decodeReplies(input, chunk: chunk, limits: limits)
        return nil
    } catch let error as RESPProtocolError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

/// The wire encoding of a value.
func encoded(_ value: RESPValue) -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.writeRESPValue(value)
    return Array(buffer.readableBytesView)
}
