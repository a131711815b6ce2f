#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import KVDaemon
import KVStore
import NIOCore
import RaftCore

/// Fuzzes the peer protocol: `PeerFrameParser.next(from:)` over a stream (lengths, types,
/// handshakes, Raft messages with their entries, memberships and snapshot chunks).
/// Invariants: any cutting of the stream gives the same frames and error as the whole stream;
/// each decoded frame, written again by `PeerWire.write`, decodes to itself.

let parser = PeerFrameParser(frameBytesMax: 1 << 16)

struct Outcome: Equatable {
    var frames: [PeerFrame] = []
    var error: PeerWireError?
}

func decode(_ chunks: [ArraySlice<UInt8>], compact: Bool) -> Outcome {
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    var outcome = Outcome()
    for chunk in chunks {
        buffer.writeBytes(chunk)
        do {
            while let frame = try parser.next(from: &buffer) { outcome.frames.append(frame) }
        } catch {
            outcome.error = error
            return outcome
        }
        if compact { buffer.discardReadBytes() }
    }
    return outcome
}

/// The frame to send that carries `frame`, or nil where writing is lossy by design (a refusal
/// reason is cut to 1024 bytes).
func outbound(_ frame: PeerFrame) -> PeerOutboundFrame? {
    switch frame {
    case .handshake(let handshake): return .handshake(handshake)
    case .messages(let messages):
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        for message in messages { bytes.writeBytes(PeerWire.encode(message)) }
        return .messages(count: messages.count, bytes: bytes)
    case .refusal(let reason): return reason.utf8.count <= 1024 ? .refusal(reason) : nil
    case .probe(let sequence): return .probe(sequence)
    case .probeAnswer(let sequence): return .probeAnswer(sequence)
    case .proof(let proof): return .proof(proof)
    }
}

func frameBytes(_ frames: [PeerOutboundFrame]) -> [UInt8] {
    var buffer = ByteBufferAllocator().buffer(capacity: 64)
    for frame in frames { PeerWire.write(frame, to: &buffer) }
    return Array(buffer.readableBytesView)
}

func seedMessages() -> [Message] {
    let membership = ClusterMembership(voters: [1, 2, 3], learners: [4])
    let command = KVCommand(
        session: SessionStamp(clientID: 7, sequence: 1), timestampMillis: 1_700_000_000_000,
        operation: .put(key: Array("k".utf8), value: Array("v".utf8), condition: .always, lease: nil, fence: nil))
    let entries = [
        Entry(term: 2, index: 5, payload: .noop), Entry(term: 2, index: 6, payload: .command(command.encoded())),
        Entry(term: 2, index: 7, payload: .membership(membership)),
    ]
    let snapshot = SnapshotMetadata(lastIncludedIndex: 9, lastIncludedTerm: 2, membership: membership)
    let bodies: [Message.Body] = [
        .requestVote(RequestVote(lastLogIndex: 4, lastLogTerm: 1, isPreVote: true, isLeadershipTransfer: false)),
        .requestVoteResponse(RequestVoteResponse(voteGranted: true, isPreVote: false)),
        .appendEntries(AppendEntries(prevLogIndex: 4, prevLogTerm: 1, entries: entries, leaderCommit: 4, round: 3)),
        .appendEntriesResponse(AppendEntriesResponse(success: false, matchIndex: 4, rejectedIndex: 6, conflictTerm: 1, conflictIndex: 3, round: 3)),
        .installSnapshot(InstallSnapshot(metadata: snapshot, offset: 0, data: [1, 2, 3, 4], done: true, round: 4)),
        .installSnapshotResponse(
            InstallSnapshotResponse(lastIncludedIndex: 9, lastIncludedTerm: 2, bytesReceived: 4, installed: true, matchIndex: 9, round: 4)),
        .timeoutNow,
        .readIndexRequest(ReadIndexRequest(id: ReadRequestID(origin: 2, sequence: 11))),
        .readIndexResponse(ReadIndexResponse(id: ReadRequestID(origin: 2, sequence: 11), readIndex: 9)),
        .forwardedProposal(ForwardedProposal(id: 12, command: command.encoded())),
        .forwardedProposalRefused(ForwardedProposalRefusal(id: 12, reason: .notLeader(leaderHint: 3))),
        .forwardedProposalRefused(ForwardedProposalRefusal(id: 13, reason: .leadershipTransfer(target: 2))),
    ]
    return bodies.map { Message(from: 1, to: 2, term: 2, body: $0) }
}

/// Seeds for Fuzz/corpus, made with the real encoders (scripts/fuzz.sh --write-seeds).
func seeds() throws -> [(name: String, bytes: [UInt8])] {
    let nonce = [UInt8](repeating: 0xA5, count: 32), proof = [UInt8](repeating: 0x5A, count: 32)
    let messages = seedMessages()
    func batch(_ messages: [Message]) -> PeerOutboundFrame {
        var bytes = ByteBufferAllocator().buffer(capacity: 64)
        for message in messages { bytes.writeBytes(PeerWire.encode(message)) }
        return .messages(count: messages.count, bytes: bytes)
    }
    var seeds: [(name: String, bytes: [UInt8])] = [
        ("handshake-v1", [0] + frameBytes([.handshake(PeerHandshake(clusterID: "demo", sender: 1, receiver: 2, version: 1))])),
        ("handshake-v2", [1] + frameBytes([.handshake(PeerHandshake(clusterID: "demo", sender: 1, receiver: 2, version: 2))])),
        ("handshake-v3-proof-then-messages", [2] + frameBytes([
            .handshake(PeerHandshake(clusterID: "demo", sender: 2, receiver: 1, nonce: nonce, proof: proof)),
            .proof(proof), .probe(1), batch(messages),
        ])),
        ("refusal-probe-answer", [3] + frameBytes([.probeAnswer(1), .refusal("cluster id differs")])),
        ("messages-all", [6] + frameBytes([batch(messages)])),
    ]
    for (number, message) in messages.enumerated() {
        seeds.append(("message-\(number)", [UInt8(number % 8)] + frameBytes([batch([message])])))
    }
    return seeds
}

/// One input (libFuzzer's `LLVMFuzzerTestOneInput`).
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = input.decodedAlike { decode($0, compact: $1) }
    for frame in whole.frames {
        guard let again = outbound(frame) else { continue }
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        PeerWire.write(again, to: &buffer)
        let decoded = Result { () throws(PeerWireError) in try PeerFrameParser(frameBytesMax: Int(UInt32.max)).next(from: &buffer) }
        expect(decoded == .success(frame), "\(frame) is written as bytes that decode to \(decoded)")
    }
    return 0
}
