public import KVStore
public import RaftCore

/// The binary form of one RaftCore `Message` (protocol version 1), written with KVStore's
/// `BinaryWriter` (u64 little-endian integers, u8 booleans 0/1, byte strings as u64 length + bytes,
/// optionals as a boolean then the value):
///
/// ```
/// u64 from, u64 to, u64 term, u8 body kind, then the body:
/// 1 RequestVote              lastLogIndex, lastLogTerm, isPreVote, isLeadershipTransfer
/// 2 RequestVoteResponse      voteGranted, isPreVote
/// 3 AppendEntries            prevLogIndex, prevLogTerm, leaderCommit, round, u64 count, entries
/// 4 AppendEntriesResponse    success, matchIndex, rejectedIndex, conflictTerm?, conflictIndex, round
/// 5 InstallSnapshot          lastIncludedIndex, lastIncludedTerm, membership bytes, offset, data bytes, done, round
/// 6 InstallSnapshotResponse  lastIncludedIndex, lastIncludedTerm, bytesReceived, installed, matchIndex, round
/// 7 TimeoutNow               (nothing)
/// 8 ReadIndexRequest         origin, sequence
/// 9 ReadIndexResponse        origin, sequence, readIndex?
/// 10 ForwardedProposal       id, command bytes
/// 11 ForwardedProposalRefused id, u8 reason (1 not leader, 2 leadership transfer, 3 uncommitted
///                            bytes limit), u64 node (leader hint or transfer target, 0 if none)
/// ```
/// An entry is `u64 term, u64 index, u8 payload kind, payload bytes`, with the payload kind and
/// bytes of `RaftCodec` (the same form the SQLite log stores); memberships use
/// `RaftCodec.encode(_:)` too, so one codec defines them everywhere.
extension PeerWire {
    /// The body kinds on the wire.
    enum BodyKind: UInt8 {
        case requestVote = 1
        case requestVoteResponse = 2
        case appendEntries = 3
        case appendEntriesResponse = 4
        case installSnapshot = 5
        case installSnapshotResponse = 6
        case timeoutNow = 7
        case readIndexRequest = 8
        case readIndexResponse = 9
        case forwardedProposal = 10
        case forwardedProposalRefused = 11
    }

    /// The fewest bytes any message takes (from, to, term, kind): bounds counts read off the wire.
    static let messageBytesMin = 25
    /// The fewest bytes any entry takes (term, index, kind, payload length).
    static let entryBytesMin = 25

    /// The encoding of `message`.
    public static func encode(_ message: Message) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64 + message.wireSizeHint)
        encode(message, into: &writer)
        return writer.bytes
    }

    /// Appends the encoding of `message` to `writer`.
    public static func encode(_ message: Message, into writer: inout BinaryWriter) {
        writer.write(message.from.rawValue)
        writer.write(message.to.rawValue)
        writer.write(message.term.rawValue)
        switch message.body {
        case .requestVote(let vote):
            writer.write(BodyKind.requestVote.rawValue)
            writer.write(vote.lastLogIndex.rawValue)
            writer.write(vote.lastLogTerm.rawValue)
            writer.write(vote.isPreVote)
            writer.write(vote.isLeadershipTransfer)
        case .requestVoteResponse(let response):
            writer.write(BodyKind.requestVoteResponse.rawValue)
            writer.write(response.voteGranted)
            writer.write(response.isPreVote)
        case .appendEntries(let append):
            writer.write(BodyKind.appendEntries.rawValue)
            writer.write(append.prevLogIndex.rawValue)
            writer.write(append.prevLogTerm.rawValue)
            writer.write(append.leaderCommit.rawValue)
            writer.write(append.round)
            writer.write(UInt64(append.entries.count))
            for entry in append.entries {
                writer.write(entry.term.rawValue)
                writer.write(entry.index.rawValue)
                let (kind, bytes) = RaftCodec.encode(entry.payload)
                writer.write(UInt8(truncatingIfNeeded: kind.rawValue))
                writer.write(bytes)
            }
        case .appendEntriesResponse(let response):
            writer.write(BodyKind.appendEntriesResponse.rawValue)
            writer.write(response.success)
            writer.write(response.matchIndex.rawValue)
            writer.write(response.rejectedIndex.rawValue)
            writer.write(optional: response.conflictTerm?.rawValue)
            writer.write(response.conflictIndex.rawValue)
            writer.write(response.round)
        case .installSnapshot(let chunk):
            writer.write(BodyKind.installSnapshot.rawValue)
            writer.write(chunk.metadata.lastIncludedIndex.rawValue)
            writer.write(chunk.metadata.lastIncludedTerm.rawValue)
            writer.write(RaftCodec.encode(chunk.metadata.membership))
            writer.write(Int64(chunk.offset))
            writer.write(chunk.data)
            writer.write(chunk.done)
            writer.write(chunk.round)
        case .installSnapshotResponse(let response):
            writer.write(BodyKind.installSnapshotResponse.rawValue)
            writer.write(response.lastIncludedIndex.rawValue)
            writer.write(response.lastIncludedTerm.rawValue)
            writer.write(Int64(response.bytesReceived))
            writer.write(response.installed)
            writer.write(response.matchIndex.rawValue)
            writer.write(response.round)
        case .timeoutNow:
            writer.write(BodyKind.timeoutNow.rawValue)
        case .readIndexRequest(let request):
            writer.write(BodyKind.readIndexRequest.rawValue)
            writer.write(request.id.origin.rawValue)
            writer.write(request.id.sequence)
        case .readIndexResponse(let response):
            writer.write(BodyKind.readIndexResponse.rawValue)
            writer.write(response.id.origin.rawValue)
            writer.write(response.id.sequence)
            writer.write(optional: response.readIndex?.rawValue)
        case .forwardedProposal(let proposal):
            writer.write(BodyKind.forwardedProposal.rawValue)
            writer.write(proposal.id)
            writer.write(proposal.command)
        case .forwardedProposalRefused(let refusal):
            writer.write(BodyKind.forwardedProposalRefused.rawValue)
            writer.write(refusal.id)
            switch refusal.reason {
            case .notLeader(let hint):
                writer.write(UInt8(1))
                writer.write(hint?.rawValue ?? 0)
            case .leadershipTransfer(let target):
                writer.write(UInt8(2))
                writer.write(target.rawValue)
            case .uncommittedBytesLimit:
                writer.write(UInt8(3))
                writer.write(UInt64(0))
            }
        }
    }

    /// Reads one message; `total` is the size of the whole payload, used to bound counts.
    static func decodeMessage(_ reader: inout BinaryReader, total: Int) throws -> Message {
        let from = NodeID(try reader.readUInt64())
        let to = NodeID(try reader.readUInt64())
        let term = Term(try reader.readUInt64())
        let kindByte = try reader.readByte()
        guard let kind = BodyKind(rawValue: kindByte) else {
            throw PeerWireError.malformed("unknown message kind \(kindByte) at offset \(reader.offset - 1)")
        }
        let body: Message.Body
        switch kind {
        case .requestVote:
            body = .requestVote(
                RequestVote(
                    lastLogIndex: LogIndex(try reader.readUInt64()), lastLogTerm: Term(try reader.readUInt64()),
                    isPreVote: try reader.readBool(), isLeadershipTransfer: try reader.readBool()))
        case .requestVoteResponse:
            body = .requestVoteResponse(
                RequestVoteResponse(voteGranted: try reader.readBool(), isPreVote: try reader.readBool()))
        case .appendEntries: body = .appendEntries(try decodeAppendEntries(&reader, total: total))
        case .appendEntriesResponse:
            body = .appendEntriesResponse(
                AppendEntriesResponse(
                    success: try reader.readBool(), matchIndex: LogIndex(try reader.readUInt64()),
                    rejectedIndex: LogIndex(try reader.readUInt64()),
                    conflictTerm: try reader.readOptionalUInt64().map(Term.init(_:)),
                    conflictIndex: LogIndex(try reader.readUInt64()), round: try reader.readUInt64()))
        case .installSnapshot: body = .installSnapshot(try decodeInstallSnapshot(&reader))
        case .installSnapshotResponse:
            body = .installSnapshotResponse(
                InstallSnapshotResponse(
                    lastIncludedIndex: LogIndex(try reader.readUInt64()), lastIncludedTerm: Term(try reader.readUInt64()),
                    bytesReceived: try readCount(&reader, "bytesReceived"), installed: try reader.readBool(),
                    matchIndex: LogIndex(try reader.readUInt64()), round: try reader.readUInt64()))
        case .timeoutNow: body = .timeoutNow
        case .readIndexRequest:
            body = .readIndexRequest(ReadIndexRequest(id: try readRequestID(&reader)))
        case .readIndexResponse:
            body = .readIndexResponse(
                ReadIndexResponse(
                    id: try readRequestID(&reader), readIndex: try reader.readOptionalUInt64().map(LogIndex.init(_:))))
        case .forwardedProposal:
            body = .forwardedProposal(ForwardedProposal(id: try reader.readUInt64(), command: try reader.readBytes()))
        case .forwardedProposalRefused:
            body = .forwardedProposalRefused(try decodeRefusal(&reader))
        }
        return Message(from: from, to: to, term: term, body: body)
    }

    private static func decodeAppendEntries(_ reader: inout BinaryReader, total: Int) throws -> AppendEntries {
        let prevLogIndex = LogIndex(try reader.readUInt64())
        let prevLogTerm = Term(try reader.readUInt64())
        let leaderCommit = LogIndex(try reader.readUInt64())
        let round = try reader.readUInt64()
        let count = try reader.readUInt64()
        guard count <= UInt64((total - reader.offset) / entryBytesMin) else {
            throw PeerWireError.malformed("\(count) entries cannot fit in the \(total - reader.offset) bytes left")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(Int(count))
        for _ in 0..<count {
            let term = Term(try reader.readUInt64())
            let index = LogIndex(try reader.readUInt64())
            let kind = try reader.readByte()
            let bytes = try reader.readBytes()
            let payload: Entry.Payload
            do {
                payload = try RaftCodec.decodePayload(kind: Int64(kind), bytes: bytes, context: "entry \(index)")
            } catch {
                throw PeerWireError.malformed(error.description)
            }
            entries.append(Entry(term: term, index: index, payload: payload))
        }
        return AppendEntries(
            prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm, entries: entries, leaderCommit: leaderCommit,
            round: round)
    }

    private static func decodeInstallSnapshot(_ reader: inout BinaryReader) throws -> InstallSnapshot {
        let lastIncludedIndex = LogIndex(try reader.readUInt64())
        let lastIncludedTerm = Term(try reader.readUInt64())
        let membershipBytes = try reader.readBytes()
        let membership: ClusterMembership
        do {
            membership = try RaftCodec.decodeMembership(membershipBytes, context: "snapshot \(lastIncludedIndex)")
        } catch {
            throw PeerWireError.malformed(error.description)
        }
        let metadata = SnapshotMetadata(
            lastIncludedIndex: lastIncludedIndex, lastIncludedTerm: lastIncludedTerm, membership: membership)
        return InstallSnapshot(
            metadata: metadata, offset: try readCount(&reader, "offset"), data: try reader.readBytes(),
            done: try reader.readBool(), round: try reader.readUInt64())
    }

    /// A non-negative `Int` stored as an i64; a negative value is malformed, never a trap.
    private static func readCount(_ reader: inout BinaryReader, _ field: String) throws -> Int {
        let value = try reader.readInt64()
        guard value >= 0, value <= Int64(Int.max) else { throw PeerWireError.malformed("negative \(field) \(value)") }
        return Int(value)
    }

    private static func decodeRefusal(_ reader: inout BinaryReader) throws -> ForwardedProposalRefusal {
        let id = try reader.readUInt64()
        let reasonByte = try reader.readByte()
        let node = try reader.readUInt64()
        let reason: ForwardedProposalRefusal.Reason
        switch reasonByte {
        case 1: reason = .notLeader(leaderHint: node == 0 ? nil : NodeID(node))
        case 2 where node != 0: reason = .leadershipTransfer(target: NodeID(node))
        case 3: reason = .uncommittedBytesLimit
        default: throw PeerWireError.malformed("bad forward refusal reason \(reasonByte) (node \(node))")
        }
        return ForwardedProposalRefusal(id: id, reason: reason)
    }

    private static func readRequestID(_ reader: inout BinaryReader) throws -> ReadRequestID {
        ReadRequestID(origin: NodeID(try reader.readUInt64()), sequence: try reader.readUInt64())
    }
}

extension Message {
    /// Roughly the bytes of entries or snapshot data this message carries, to size its encoding buffer.
    var wireSizeHint: Int {
        switch body {
        case .appendEntries(let append): return append.entries.reduce(0) { $0 + $1.sizeBytes }
        case .installSnapshot(let chunk): return chunk.data.count + 64
        case .forwardedProposal(let proposal): return proposal.command.count
        case .requestVote, .requestVoteResponse, .appendEntriesResponse, .installSnapshotResponse, .timeoutNow,
            .readIndexRequest, .readIndexResponse, .forwardedProposalRefused:
            return 0
        }
    }
}
