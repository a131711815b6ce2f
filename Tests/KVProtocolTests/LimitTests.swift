import KVProtocol
import NIOCore
import Testing

/// Every `RESPLimits` limit, at its edge: exactly at the limit passes, one over fails.
@Suite("RESP limits at their edges")
struct LimitTests {
    static func small() -> RESPLimits {
        var limits = RESPLimits()
        limits.lineBytesMax = 16
        limits.bulkBytesMax = 8
        limits.arrayElementsMax = 3
        limits.messageBytesMax = 20
        limits.nestingDepthMax = 2
        return limits
    }

    @Test("inline line: 16 bytes pass, 17 fail, and a 17-byte line without LF fails before its LF arrives")
    func inlineLine() throws {
        let limits = Self.small()
        let exact = String(repeating: "a", count: 16)
        #expect(try decodeRequests(bytes(exact + "\r\n"), limits: limits) == [[bytes(exact)]])
        #expect(try decodeRequests(bytes(exact + "\n"), limits: limits) == [[bytes(exact)]])
        #expect(requestError(bytes(exact + "a\r\n"), limits: limits) == .inlineRequestTooLong(limit: 16))
        #expect(requestError(bytes(exact + "ab"), limits: limits) == .inlineRequestTooLong(limit: 16))
        #expect(requestError(bytes(exact + "\r"), limits: limits) == nil)
    }

    @Test("header line length is bounded by the same line limit")
    func headerLine() {
        let limits = Self.small()
        #expect(requestError(bytes("*" + String(repeating: "1", count: 16) + "\r\n"), limits: limits) == .lineTooLong(limit: 16))
        #expect(requestError(bytes("*" + String(repeating: "0", count: 14) + "1\r\n"), limits: limits) == .invalidMultibulkLength)
    }

    @Test("bulk string: 8 bytes pass, 9 fail (request and reply)")
    func bulk() throws {
        let limits = Self.small()
        #expect(try decodeRequests(bytes("*1\r\n$8\r\n12345678\r\n"), limits: limits) == [[bytes("12345678")]])
        #expect(requestError(bytes("*1\r\n$9\r\n"), limits: limits) == .bulkLengthTooLarge(length: 9, limit: 8))
        #expect(try decodeReplies(bytes("$8\r\n12345678\r\n"), limits: limits) == [.bulkString(bytes("12345678"))])
        #expect(replyError(bytes("$9\r\n"), limits: limits) == .bulkLengthTooLarge(length: 9, limit: 8))
    }

    @Test("array elements: 3 pass, 4 fail (request and reply, nested arrays share the budget)")
    func elements() throws {
        let limits = Self.small()
        let three = bytes("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n")
        #expect(try decodeRequests(three, limits: limits) == [[bytes("a"), bytes("b"), bytes("c")]])
        #expect(requestError(bytes("*4\r\n"), limits: limits) == .multibulkLengthTooLarge(length: 4, limit: 3))
        #expect(try decodeReplies(bytes("*3\r\n:1\r\n:2\r\n:3\r\n"), limits: limits).count == 1)
        #expect(replyError(bytes("*4\r\n"), limits: limits) == .multibulkLengthTooLarge(length: 4, limit: 3))
        #expect(replyError(bytes("*2\r\n*2\r\n"), limits: limits) == .multibulkLengthTooLarge(length: 2, limit: 3))
    }

    @Test("message payload: 20 bytes over several bulks pass, 21 fail")
    func message() throws {
        let limits = Self.small()
        let exact = bytes("*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$4\r\n1234\r\n")
        #expect(try decodeRequests(exact, limits: limits).count == 1)
        let over = bytes("*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$5\r\n")
        #expect(requestError(over, limits: limits) == .messageTooLarge(limit: 20))
        #expect(try decodeReplies(bytes("*3\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n$4\r\n1234\r\n"), limits: limits).count == 1)
        #expect(replyError(over, limits: limits) == .messageTooLarge(limit: 20))
    }

    @Test("the payload budget resets between pipelined requests")
    func messageBudgetPerRequest() throws {
        let limits = Self.small()
        let one = "*2\r\n$8\r\n12345678\r\n$8\r\n12345678\r\n"
        #expect(try decodeRequests(bytes(one + one + one), limits: limits).count == 3)
    }

    @Test("reply nesting: depth 2 passes, depth 3 fails")
    func nesting() throws {
        let limits = Self.small()
        #expect(try decodeReplies(bytes("*1\r\n*1\r\n:1\r\n"), limits: limits) == [.array([.array([.integer(1)])])])
        #expect(replyError(bytes("*1\r\n*1\r\n*1\r\n"), limits: limits) == .nestingTooDeep(limit: 2))
    }

    @Test("reply line: a 16-byte simple string passes, 17 fails")
    func replyLine() throws {
        let limits = Self.small()
        let exact = String(repeating: "x", count: 15)
        #expect(try decodeReplies(bytes("+" + exact + "\r\n"), limits: limits) == [.simpleString(exact)])
        #expect(replyError(bytes("+" + exact + "y\r\n"), limits: limits) == .lineTooLong(limit: 16))
    }

    @Test("defaults: 64 KiB lines, 1 MiB + 64 KiB bulks, 1Mi elements")
    func defaults() throws {
        let limits = RESPLimits()
        #expect(limits.lineBytesMax == 65_536)
        #expect(limits.bulkBytesMax == (1 << 20) + 65_536)
        #expect(limits.arrayElementsMax == 1 << 20)
        let big = [UInt8](repeating: 7, count: limits.bulkBytesMax)
        var buffer = ByteBuffer()
        buffer.writeRESPCommand([bytes("SET"), bytes("k"), big])
        #expect(try decodeRequests(Array(buffer.readableBytesView), chunk: 4096) == [[bytes("SET"), bytes("k"), big]])
    }
}
