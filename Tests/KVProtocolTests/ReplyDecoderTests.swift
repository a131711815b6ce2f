import KVProtocol
import NIOCore
import NIOEmbedded
import Testing

@Suite("RESP reply decoder and encoder")
struct ReplyDecoderTests {
    static let sample: [RESPValue] = [
        .simpleString("OK"), .error("NOTLEADER 2 127.0.0.1:7002"), .integer(-42), .integer(Int64.max),
        .bulkString([0, 13, 10, 255]), .bulkString([]), .nullBulkString, .nullArray, .array([]),
        .array([.integer(1), .array([.bulkString(bytes("a")), .nullBulkString]), .simpleString("x")]),
    ]

    @Test("every value kind survives encode → decode, byte at a time and all at once", arguments: [1, 3, 1000])
    func roundTrip(chunk: Int) throws {
        let wire = Self.sample.flatMap(encoded)
        #expect(try decodeReplies(wire, chunk: chunk) == Self.sample)
    }

    @Test("the encoder writes Redis's exact bytes")
    func exactBytes() {
        #expect(encoded(.ok) == bytes("+OK\r\n"))
        #expect(encoded(.error("ERR bad")) == bytes("-ERR bad\r\n"))
        #expect(encoded(.integer(-5)) == bytes(":-5\r\n"))
        #expect(encoded(.bulkString("hi")) == bytes("$2\r\nhi\r\n"))
        #expect(encoded(.nullBulkString) == bytes("$-1\r\n"))
        #expect(encoded(.nullArray) == bytes("*-1\r\n"))
        #expect(encoded(.array([.integer(1)])) == bytes("*1\r\n:1\r\n"))
    }

    @Test("CR and LF inside a simple string or error cannot break the framing")
    func lineSanitised() throws {
        #expect(encoded(.error("ERR a\r\nb")) == bytes("-ERR a  b\r\n"))
        #expect(try decodeReplies(encoded(.simpleString("a\nb"))) == [.simpleString("a b")])
    }

    @Test("a command encodes as an array of bulk strings, the same as RESPValue.command")
    func commandEncoding() throws {
        var buffer = ByteBuffer()
        buffer.writeRESPCommand([bytes("GET"), bytes("k")])
        #expect(Array(buffer.readableBytesView) == encoded(.command(["GET", "k"])))
        #expect(try decodeRequests(Array(buffer.readableBytesView)) == [[bytes("GET"), bytes("k")]])
    }

    @Test("garbage replies are protocol errors")
    func garbage() {
        #expect(replyError(bytes("?x\r\n")) == .unknownReplyType(got: UInt8(ascii: "?")))
        #expect(replyError(bytes(":abc\r\n")) == .invalidInteger)
        #expect(replyError(bytes(":99999999999999999999\r\n")) == .invalidInteger)
        #expect(replyError(bytes("$-2\r\n")) == .invalidBulkLength)
        #expect(replyError(bytes("$abc\r\n")) == .invalidBulkLength)
        #expect(replyError(bytes("*-5\r\n")) == .invalidMultibulkLength)
        #expect(replyError(bytes("$2\r\nabX\r\n")) == .expectedCRLF)
        #expect(replyError(bytes("+OK\n")) == .expectedCRLF)
        #expect(replyError(bytes("\r\n")) != nil)
    }

    @Test("a nested array count near Int64.max is refused, not added into an overflow (found by fuzzing)")
    func nestedCountOverflow() {
        // Fuzz/corpus/fuzz-resp-reply/regression-nested-count-overflow: the count was added to
        // the reply's element total before it was compared with the limit, which trapped.
        let input = bytes("*1\r\n*9223372036854775807\r\n")
        for chunk in [1, 1000] {
            #expect(replyError(input, chunk: chunk) == .multibulkLengthTooLarge(length: Int.max, limit: RESPLimits().arrayElementsMax))
        }
        #expect(replyError(bytes("*2\r\n:1\r\n*9223372036854775807\r\n")) != nil)
    }

    @Test("a reply cut off by the connection closing is reported as truncated")
    func truncated() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RESPReplyDecoder()))
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes("*2\r\n:1\r\n")))
        #expect(throws: RESPProtocolError.truncated) { _ = try channel.finish() }
    }

    @Test("a multi-megabyte reply arriving in small chunks decodes (no quadratic rescans)")
    func largeReplyInChunks() throws {
        let elements = (0..<2000).map { RESPValue.bulkString([UInt8](repeating: UInt8($0 % 251), count: 1000)) }
        let wire = encoded(.array(elements))
        #expect(try decodeReplies(wire, chunk: 512) == [.array(elements)])
    }
}
