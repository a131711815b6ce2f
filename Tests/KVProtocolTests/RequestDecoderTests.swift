import KVProtocol
import NIOCore
import Testing

@Suite("RESP request decoder")
struct RequestDecoderTests {
    @Test("a multibulk request decodes identically whatever the fragmentation", arguments: [1, 2, 3, 7, 1000])
    func multibulkAnyChunking(chunk: Int) throws {
        let input = bytes("*3\r\n$3\r\nSET\r\n$8\r\ngreeting\r\n$5\r\nhello\r\n")
        #expect(try decodeRequests(input, chunk: chunk) == [[bytes("SET"), bytes("greeting"), bytes("hello")]])
    }

    @Test("inline requests end with LF or CRLF and split on spaces and tabs", arguments: [1, 5, 1000])
    func inlineAnyChunking(chunk: Int) throws {
        let input = bytes("SET greeting hello\r\nGET\t greeting\n")
        #expect(
            try decodeRequests(input, chunk: chunk) == [
                [bytes("SET"), bytes("greeting"), bytes("hello")], [bytes("GET"), bytes("greeting")],
            ])
    }

    @Test("pipelined multibulk and inline requests come out in order, one per request")
    func pipelinedMixed() throws {
        let input = bytes("PING\r\n*1\r\n$4\r\nPING\r\n\r\n*0\r\n*-1\r\nECHO hi\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n")
        let expected = [[bytes("PING")], [bytes("PING")], [bytes("ECHO"), bytes("hi")], [bytes("GET"), []]]
        #expect(try decodeRequests(input, chunk: 1) == expected)
        #expect(try decodeRequests(input, chunk: input.count) == expected)
    }

    @Test("bulk strings are binary-safe: CR, LF, NUL and high bytes survive")
    func binarySafe() throws {
        let value: [UInt8] = [0, 13, 10, 255, 36, 42, 13, 10, 0x80]
        var buffer = ByteBuffer()
        buffer.writeRESPCommand([bytes("SET"), bytes("k"), value])
        #expect(try decodeRequests(Array(buffer.readableBytesView)) == [[bytes("SET"), bytes("k"), value]])
    }

    @Test("inline quoting follows Redis: double-quote escapes, single quotes, mid-word quotes")
    func inlineQuoting() throws {
        let input = bytes(#"SET "a b\x41\n\"" 'it\'s' x"y z"  ''"# + "\r\n")
        #expect(try decodeRequests(input) == [[bytes("SET"), bytes("a bA\n\""), bytes("it's"), bytes("xy z"), []]])
    }

    @Test("unbalanced or glued quotes are protocol errors", arguments: [#"GET "abc"#, "GET 'abc", #"GET "a"b"#])
    func unbalancedQuotes(line: String) {
        #expect(requestError(bytes(line + "\r\n")) == .unbalancedQuotes)
    }

    @Test("a negative or zero multibulk count is an empty request, skipped as Redis skips it")
    func negativeCountIsSkipped() throws {
        #expect(requestError(bytes("*-5\r\n")) == nil)
        #expect(try decodeRequests(bytes("*-10\r\n*0\r\n*1\r\n$4\r\nPING\r\n")) == [[bytes("PING")]])
    }

    @Test("garbage headers are protocol errors with Redis's wording")
    func garbage() {
        #expect(requestError(bytes("*abc\r\n")) == .invalidMultibulkLength)
        #expect(requestError(bytes("*1\r\n$abc\r\n")) == .invalidBulkLength)
        #expect(requestError(bytes("*1\r\n$-1\r\n")) == .invalidBulkLength)
        #expect(requestError(bytes("*1\r\n$-5\r\n")) == .invalidBulkLength)
        #expect(requestError(bytes("*1\r\n$01\r\nx\r\n")) == .invalidBulkLength)
        #expect(requestError(bytes("*1\r\n$99999999999999999999999\r\n")) == .invalidBulkLength)
        #expect(requestError(bytes("*1\r\n:5\r\n")) == .expectedBulkString(got: UInt8(ascii: ":")))
        #expect(requestError(bytes("*1\r\n$3\r\nGETxx")) == .expectedCRLF)
        #expect(requestError(bytes("*1\n")) == .expectedCRLF)
        #expect(requestError(bytes("*1\r\n$3\nGET\r\n")) == .expectedCRLF)
        #expect(RESPProtocolError.invalidBulkLength.message == "Protocol error: invalid bulk length")
    }

    @Test("huge lengths are refused from the header, before any payload is buffered")
    func hugeLengths() {
        #expect(requestError(bytes("*1\r\n$9000000000\r\n")) == .bulkLengthTooLarge(length: 9_000_000_000, limit: RESPLimits().bulkBytesMax))
        #expect(requestError(bytes("*99999999\r\n")) == .multibulkLengthTooLarge(length: 99_999_999, limit: 1024 * 1024))
    }
}
