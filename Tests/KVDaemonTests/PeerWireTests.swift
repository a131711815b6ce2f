import KVStore
import NIOCore
import RaftCore
import Testing

@testable import KVDaemon

/// Seeded random Raft messages covering every `Message.Body` case and every payload kind.
struct MessageGenerator {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func u64() -> UInt64 {
        // Mix small values (the common case) with extremes (the edge cases).
        switch rng.next() % 4 {
        case 0: return 0
        case 1: return UInt64.max
        default: return rng.next() % 1000
        }
    }
    mutating func bool() -> Bool { rng.next() % 2 == 0 }
    mutating func bytes(_ max: Int) -> [UInt8] { (0..<Int(rng.next() % UInt64(max + 1))).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
    mutating func count() -> Int { Int(rng.next() % (1 << 40)) }

    mutating func membership() -> ClusterMembership {
        let voters = Set((0..<(1 + rng.next() % 5)).map { _ in NodeID(1 + rng.next() % 9) })
        let learners = Set((0..<(rng.next() % 3)).map { _ in NodeID(10 + rng.next() % 5) })
        return ClusterMembership(voters: voters, learners: learners)
    }

    mutating func entry() -> Entry {
        let payload: Entry.Payload
        switch rng.next() % 3 {
        case 0: payload = .noop
        case 1: payload = .command(bytes(200))
        default: payload = .membership(membership())
        }
        return Entry(term: Term(u64()), index: LogIndex(u64()), payload: payload)
    }

    mutating func body(kind: Int) -> Message.Body {
        switch kind {
        case 0: return .requestVote(RequestVote(lastLogIndex: LogIndex(u64()), lastLogTerm: Term(u64()), isPreVote: bool(), isLeadershipTransfer: bool()))
        case 1: return .requestVoteResponse(RequestVoteResponse(voteGranted: bool(), isPreVote: bool()))
        case 2:
            let entries = (0..<(rng.next() % 6)).map { _ in entry() }
            return .appendEntries(AppendEntries(prevLogIndex: LogIndex(u64()), prevLogTerm: Term(u64()), entries: entries, leaderCommit: LogIndex(u64()), round: u64()))
        case 3:
            return .appendEntriesResponse(AppendEntriesResponse(success: bool(), matchIndex: LogIndex(u64()), rejectedIndex: LogIndex(u64()), conflictTerm: bool() ? Term(u64()) : nil, conflictIndex: LogIndex(u64()), round: u64()))
        case 4:
            let metadata = SnapshotMetadata(lastIncludedIndex: LogIndex(u64()), lastIncludedTerm: Term(u64()), membership: membership())
            return .installSnapshot(InstallSnapshot(metadata: metadata, offset: count(), data: bytes(300), done: bool(), round: u64()))
        case 5:
            return .installSnapshotResponse(InstallSnapshotResponse(lastIncludedIndex: LogIndex(u64()), lastIncludedTerm: Term(u64()), bytesReceived: count(), installed: bool(), matchIndex: LogIndex(u64()), round: u64()))
        case 6: return .timeoutNow
        case 7: return .readIndexRequest(ReadIndexRequest(id: ReadRequestID(origin: NodeID(u64()), sequence: u64())))
        case 8: return .readIndexResponse(ReadIndexResponse(id: ReadRequestID(origin: NodeID(u64()), sequence: u64()), readIndex: bool() ? LogIndex(u64()) : nil))
        case 9: return .forwardedProposal(ForwardedProposal(id: u64(), command: bytes(200)))
        default:
            let reasons: [ForwardedProposalRefusal.Reason] = [
                .notLeader(leaderHint: nil), .notLeader(leaderHint: NodeID(u64() | 1)),
                .leadershipTransfer(target: NodeID(u64() | 1)), .uncommittedBytesLimit,
            ]
            return .forwardedProposalRefused(ForwardedProposalRefusal(id: u64(), reason: reasons[Int(rng.next() % 4)]))
        }
    }

    static let bodyKinds = 11

    mutating func message(kind: Int? = nil) -> Message {
        let kind = kind ?? Int(rng.next() % UInt64(Self.bodyKinds))
        return Message(from: NodeID(u64()), to: NodeID(u64()), term: Term(u64()), body: body(kind: kind))
    }
}

/// The bytes of one messages frame holding `messages`.
func messagesFrame(_ messages: [Message]) -> ByteBuffer {
    var payload = ByteBuffer()
    for message in messages { payload.writeBytes(PeerWire.encode(message)) }
    var frame = ByteBuffer()
    PeerWire.write(.messages(count: messages.count, bytes: payload), to: &frame)
    return frame
}

@Suite struct PeerWireTests {
    let parser = PeerFrameParser(frameBytesMax: 1 << 20)

    @Test("every message kind round-trips through a frame unchanged (seeded; seed in the failure message)", arguments: [1, 2, 3, 42, 2024] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        var generator = MessageGenerator(seed: seed)
        for kind in 0..<MessageGenerator.bodyKinds {
            let messages = (0..<20).map { _ in generator.message(kind: kind) }
            var frame = messagesFrame(messages)
            let decoded = try parser.next(from: &frame)
            #expect(decoded == .messages(messages), "seed \(seed), body kind \(kind)")
            #expect(frame.readableBytes == 0)
        }
    }

    @Test("handshake and refusal frames round-trip")
    func controlFrames() throws {
        let handshake = PeerHandshake(clusterID: "démo-1", sender: 3, receiver: 2, nonce: [UInt8](repeating: 3, count: 32))
        var buffer = ByteBuffer()
        PeerWire.write(.handshake(handshake), to: &buffer)
        PeerWire.write(.refusal("cluster id 'x' is not this cluster's 'demo'"), to: &buffer)
        PeerWire.write(.messages(count: 0, bytes: ByteBuffer()), to: &buffer)
        #expect(try parser.next(from: &buffer) == .handshake(handshake))
        #expect(try parser.next(from: &buffer) == .refusal("cluster id 'x' is not this cluster's 'demo'"))
        #expect(try parser.next(from: &buffer) == .messages([]))
        #expect(try parser.next(from: &buffer) == nil)
    }

    @Test("frames fed one byte at a time come out whole and in order, and only when complete")
    func byteAtATime() throws {
        var generator = MessageGenerator(seed: 7)
        var stream = ByteBuffer()
        var expected: [PeerFrame] = []
        PeerWire.write(.handshake(PeerHandshake(clusterID: "demo", sender: 1, receiver: 2, version: 2)), to: &stream)
        expected.append(.handshake(PeerHandshake(clusterID: "demo", sender: 1, receiver: 2, version: 2)))
        for _ in 0..<10 {
            let messages = (0..<3).map { _ in generator.message() }
            var frame = messagesFrame(messages)
            stream.writeBuffer(&frame)
            expected.append(.messages(messages))
        }
        var pending = ByteBuffer()
        var decoded: [PeerFrame] = []
        while let byte = stream.readInteger(as: UInt8.self) {
            pending.writeInteger(byte)
            while let frame = try parser.next(from: &pending) { decoded.append(frame) }
        }
        #expect(decoded == expected)
        #expect(pending.readableBytes == 0)
    }

    @Test("a frame length above the limit, or zero, is refused as soon as the length arrives")
    func oversizedFrame() throws {
        let small = PeerFrameParser(frameBytesMax: 1000)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(1001), endianness: .little)
        #expect(throws: PeerWireError.badFrameLength(1001, max: 1000)) { try small.next(from: &buffer) }
        var zero = ByteBuffer()
        zero.writeInteger(UInt32(0), endianness: .little)
        #expect(throws: PeerWireError.badFrameLength(0, max: 1000)) { try small.next(from: &zero) }
        var exact = ByteBuffer()
        exact.writeInteger(UInt32(1000), endianness: .little)
        exact.writeInteger(PeerWire.FrameType.refusal.rawValue)
        exact.writeBytes([UInt8](repeating: 65, count: 999))
        #expect(try small.next(from: &exact) == .refusal(String(repeating: "A", count: 999)))
    }

    @Test("bad handshakes give typed errors: magic, version")
    func badHandshakes() {
        #expect(throws: PeerWireError.badMagic) { try PeerWire.decodeFrame(type: 1, payload: Array("HTTP/1.1 GET".utf8)) }
        var bytes = PeerWire.magic + [9]
        bytes += [UInt8](repeating: 0, count: 24)
        #expect(throws: PeerWireError.unsupportedVersion(9)) { try PeerWire.decodeFrame(type: 1, payload: bytes) }
        #expect(throws: PeerWireError.unknownFrameType(77)) { try PeerWire.decodeFrame(type: 77, payload: []) }
        #expect(PeerWireError.unsupportedVersion(9).description == "peer speaks protocol version 9, this kvd speaks 1...3")
    }

    @Test("a message count or entry count larger than the bytes can hold is refused before allocating")
    func hugeCounts() {
        #expect(throws: PeerWireError.malformed("4294967295 messages cannot fit in 4 bytes")) {
            try PeerWire.decodeFrame(type: 2, payload: [0xFF, 0xFF, 0xFF, 0xFF])
        }
        var writer = BinaryWriter()
        for value: UInt64 in [1, 2, 3] { writer.write(value) }
        writer.write(UInt8(3))  // AppendEntries
        for value: UInt64 in [0, 0, 0, 0, UInt64.max] { writer.write(value) }
        let payload: [UInt8] = [1, 0, 0, 0] + writer.bytes
        #expect(throws: PeerWireError.self) { try PeerWire.decodeFrame(type: 2, payload: payload) }
    }

    @Test("every truncation of every message kind is refused with a typed error, never a trap or a wrong value")
    func truncation() throws {
        var generator = MessageGenerator(seed: 11)
        for kind in 0..<MessageGenerator.bodyKinds {
            let message = generator.message(kind: kind)
            let payload: [UInt8] = [1, 0, 0, 0] + PeerWire.encode(message)
            #expect(try PeerWire.decodeFrame(type: 2, payload: payload) == .messages([message]))
            for length in 0..<payload.count {
                #expect(throws: PeerWireError.self, "kind \(kind) cut at \(length)") {
                    try PeerWire.decodeFrame(type: 2, payload: Array(payload[..<length]))
                }
            }
            #expect(throws: PeerWireError.self) { try PeerWire.decodeFrame(type: 2, payload: payload + [0]) }
        }
    }

    @Test("random garbage and random byte flips never trap: each frame decodes or throws PeerWireError", arguments: [5, 6] as [UInt64])
    func fuzz(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var generator = MessageGenerator(seed: seed)
        for round in 0..<3000 {
            var payload: [UInt8]
            let type = UInt8(rng.next() % 4)
            if round % 2 == 0 {
                payload = (0..<Int(rng.next() % 120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                payload = [1, 0, 0, 0] + PeerWire.encode(generator.message())
                for _ in 0..<(1 + rng.next() % 3) {
                    let at = Int(rng.next() % UInt64(payload.count))
                    payload[at] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            do {
                _ = try PeerWire.decodeFrame(type: type, payload: payload)
            } catch {
                #expect(!error.description.isEmpty, "seed \(seed) round \(round)")
            }
        }
    }
}
