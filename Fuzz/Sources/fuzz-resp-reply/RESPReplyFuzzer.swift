#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import KVProtocol
import NIOCore

/// Fuzzes the client's reply decoder (nested arrays, every RESP2 type) with small limits.
/// Invariants: any cutting of the stream decodes to the same replies and error as the whole
/// stream; each reply, written again by `writeRESPValue`, decodes to a reply written the same.

let limits: RESPLimits = {
    var limits = RESPLimits()
    limits.lineBytesMax = 64
    limits.bulkBytesMax = 64
    limits.arrayElementsMax = 16
    limits.messageBytesMax = 256
    limits.nestingDepthMax = 4
    return limits
}()

struct Outcome: Equatable {
    var replies: [RESPValue] = []
    var error: RESPProtocolError?
}

func decode(_ chunks: [ArraySlice<UInt8>], compact: Bool, limits: RESPLimits) -> Outcome {
    var decoder = RESPReplyDecoder(limits: limits)
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    var outcome = Outcome()
    for chunk in chunks {
        buffer.writeBytes(chunk)
        do {
            while let reply = try decoder.decodeReply(&buffer) { outcome.replies.append(reply) }
        } catch {
            outcome.error = error
            return outcome
        }
        if compact { buffer.discardReadBytes() }
    }
    return outcome
}

/// Seeds for Fuzz/corpus, made with the real encoders (scripts/fuzz.sh --write-seeds).
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    func encoded(_ values: [RESPValue]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for value in values { _ = buffer.writeRESPValue(value) }
        return Array(buffer.readableBytesView)
    }
    let replies: [(String, [RESPValue])] = [
        ("ok", [.ok]), ("error", [.error("NOTLEADER 2 127.0.0.1:7002")]), ("integer", [.integer(-42)]),
        ("bulk", [.bulkString("hello")]), ("nulls", [.nullBulkString, .nullArray, .array([])]),
        ("nested", [.array([.integer(1), .array([.bulkString("a"), .nullBulkString, .array([.simpleString("x")])])])]),
        ("scan", [.array([.bulkString("0"), .array([.bulkString("k1"), .bulkString("k2")])])]),
        ("pipelined", [.ok, .integer(1), .bulkString("v"), .error("ERR wrong number of arguments")]),
    ]
    return replies.enumerated().map { number, reply in (reply.0, [UInt8(number % 8)] + encoded(reply.1)) }
}

func encoded(_ value: RESPValue) -> [UInt8] {
    var buffer = ByteBufferAllocator().buffer(capacity: 64)
    _ = buffer.writeRESPValue(value)
    return Array(buffer.readableBytesView)
}

/// One input (libFuzzer's `LLVMFuzzerTestOneInput`).
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = input.decodedAlike { decode($0, compact: $1, limits: limits) }
    for reply in whole.replies {
        // The writer turns CR and LF inside simple strings and errors into spaces, so the check
        // is that writing is stable: the bytes written decode to one reply that writes the same.
        let bytes = encoded(reply)
        let again = decode([bytes[...]], compact: false, limits: RESPLimits())
        expect(again.error == nil && again.replies.count == 1, "\(reply) is written as bytes that decode to \(again)")
        expect(encoded(again.replies[0]) == bytes, "\(reply) decodes to \(again.replies[0]) after writing, which writes differently")
    }
    return 0
}
