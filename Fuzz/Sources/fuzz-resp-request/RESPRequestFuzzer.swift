#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import KVDaemon
import KVProtocol
import NIOCore

/// Fuzzes the server's request decoder (multibulk and inline requests, pipelined) with small
/// limits, so every limit is reached, and then `CommandParser` with each decoded request.
/// Invariant: any cutting of the stream into chunks decodes to the same requests and error as
/// the whole stream at once.

let limits: RESPLimits = {
    var limits = RESPLimits()
    limits.lineBytesMax = 64
    limits.bulkBytesMax = 64
    limits.arrayElementsMax = 8
    limits.messageBytesMax = 160
    return limits
}()

struct Outcome: Equatable {
    var requests: [[[UInt8]]] = []
    var error: RESPProtocolError?
}

func decode(_ chunks: [ArraySlice<UInt8>], compact: Bool) -> Outcome {
    var decoder = RESPRequestDecoder(limits: limits)
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    var outcome = Outcome()
    for chunk in chunks {
        buffer.writeBytes(chunk)
        do {
            while let request = try decoder.decodeRequest(&buffer) { outcome.requests.append(request) }
        } catch {
            outcome.error = error
            return outcome
        }
        // What ByteToMessageHandler does between reads.
        if compact { buffer.discardReadBytes() }
    }
    return outcome
}

/// Seeds for Fuzz/corpus, made with the real encoders (scripts/fuzz.sh --write-seeds).
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    func multibulk(_ words: [String]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        _ = buffer.writeRESPCommand(words.map { Array($0.utf8) })
        return Array(buffer.readableBytesView)
    }
    let commands: [[String]] = [
        ["PING"], ["SET", "k", "v"], ["GET", "k"], ["SET", "k", "v", "EX", "10", "NX"], ["MGET", "a", "b", "c"],
        ["LOCK", "job", "LEASE", "5", "WAIT", "100"], ["LEASE", "GRANT", "3000"], ["SCAN", "0", "MATCH", "a*", "COUNT", "10"],
        ["CAS", "k", "old", "new"], ["INCRBYFLOAT", "n", "1.5e3"], ["AUTH", "alice", "secret"],
        ["HELLO", "3", "AUTH", "u", "p"], ["MEMBER", "ADD", "4", "127.0.0.1:7104", "127.0.0.1:7004"],
        ["SNAPSHOT", "CHUNK", "1", "0"], ["EXPIRE", "k", "10", "GT"],
    ]
    var seeds: [(name: String, bytes: [UInt8])] = []
    for (number, words) in commands.enumerated() {
        seeds.append(("multibulk-\(number)-\(words[0].lowercased())", [UInt8(number % 8)] + multibulk(words)))
    }
    seeds.append(("pipelined", [3] + multibulk(["MULTI"]) + multibulk(["INCR", "x"]) + multibulk(["EXEC"])))
    seeds.append(("inline", [0] + Array("SET \"a b\\x41\\n\" 'it\\'s' plain\r\nGET k\n\r\n".utf8)))
    seeds.append(("mixed", [5] + Array("*0\r\n*-1\r\nPING\r\n".utf8) + multibulk(["ECHO", "hi"])))
    return seeds
}

/// One input (libFuzzer's `LLVMFuzzerTestOneInput`).
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = input.decodedAlike { decode($0, compact: $1) }
    for request in whole.requests {
        _ = try? CommandParser.parse(request)
    }
    return 0
}
