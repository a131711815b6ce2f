import KVStore
public import NIOCore
public import RaftCore

/// The peer protocol between kvd nodes: length-prefixed binary frames over TCP.
///
/// Every integer is little-endian. A frame is
/// ```
/// u32 length       bytes that follow (type byte + payload), 1...peer-frame-bytes-max
/// u8  type         1 handshake, 2 messages, 3 refusal, 4 probe, 5 probe answer, 6 proof
/// ... payload
/// ```
/// - **handshake** (first frame in each direction): magic `KVDP`, u8 protocol version, cluster id
///   (u64 length + UTF-8), u64 sender node id, u64 receiver node id (the node the sender believes
///   it is talking to). The dialing node sends first; the listening node answers with its own
///   handshake, or with a refusal and closes if the cluster id differs, the sender is not a
///   configured node, or the receiver id is not its own.
///   From version 3 the handshake goes on with u8 flags (bit 0: a proof follows), a 32-byte
///   nonce, and with the flag a 32-byte proof of the cluster secret (see `PeerSecret`).
/// - **proof** (version 3, dialing side only, right after the listening side's handshake): the
///   dialing node's 32-byte proof of the cluster secret.
/// - **messages**: u32 count, then `count` Raft messages back to back (see `PeerWire+Messages`).
///   Many messages share one frame and one write (batching); a node sends Raft messages only on
///   connections it dialed, so each direction of a node pair has its own TCP connection.
/// - **refusal**: a UTF-8 reason, sent just before closing so the other side can log why.
/// - **probe** (version 2, dialing side only): a u64 sequence number. The listening side answers
///   each with a **probe answer** carrying the same number, on the same connection. A probe
///   travels behind every byte written before it, so its answer proves that those bytes arrived
///   and that the peer's process is running: a connection whose probes go unanswered for
///   `peer-stall-timeout-ms` is stuck (in the kernel's retransmission back-off after a partition,
///   or its peer is paused) and is closed and redialed.
///
/// Versions: the dialing node sends the highest version it speaks; the listening node answers
/// with the lower of that and its own, and that version holds on the connection. Version 1 has no
/// probes. A version-1 node refuses a version-2 handshake, so during a rolling upgrade the
/// upgraded nodes cannot dial the old ones until those are upgraded too (the old ones can still
/// dial them): upgrade one node at a time and wait for it to catch up before the next.
///
/// Decoding never traps: a length outside the limit, an unknown type, a truncated or malformed
/// payload gives a `PeerWireError` and the connection is dropped.
public enum PeerWire {
    /// The four bytes that open every handshake, so a stray client (or an HTTP probe) hitting the
    /// peer port is recognised at once.
    public static let magic: [UInt8] = Array("KVDP".utf8)
    /// The newest protocol version this kvd speaks.
    public static let version: UInt8 = 3
    /// Every version this kvd accepts in a handshake; others are refused.
    public static let supportedVersions: ClosedRange<UInt8> = 1...3
    /// The first version with probes.
    public static let probeVersion: UInt8 = 2
    /// The first version whose handshake carries a nonce and can prove the cluster secret.
    public static let secretVersion: UInt8 = 3
    /// Bytes before the payload: the u32 length and the type byte.
    public static let frameHeaderBytes = 5
    /// Bytes of a messages frame before its first message: header plus the u32 count.
    public static let messagesFrameHeaderBytes = frameHeaderBytes + 4
    /// Longest cluster id accepted in a handshake (the configuration allows 64).
    static let clusterIDBytesMax = 255

    /// The frame types.
    public enum FrameType: UInt8, Sendable {
        case handshake = 1
        case messages = 2
        case refusal = 3
        case probe = 4
        case probeAnswer = 5
        case proof = 6
    }
}

/// The first frame in each direction: who is talking, in which cluster, to whom.
public struct PeerHandshake: Hashable, Sendable {
    /// The protocol version the sender speaks.
    public var version: UInt8
    /// The sender's cluster id.
    public var clusterID: String
    /// The sender's node id.
    public var sender: NodeID
    /// The node the sender believes it is connected to.
    public var receiver: NodeID
    /// Version 3 on: the sender's fresh random nonce (`PeerSecret.nonceBytes`).
    public var nonce: [UInt8]?
    /// Version 3 on, the listening side's answer only, when it has a cluster secret: its proof.
    public var proof: [UInt8]?

    /// A handshake of this kvd's protocol version.
    public init(
        clusterID: String, sender: NodeID, receiver: NodeID, version: UInt8 = PeerWire.version, nonce: [UInt8]? = nil,
        proof: [UInt8]? = nil
    ) {
        self.version = version
        self.clusterID = clusterID
        self.sender = sender
        self.receiver = receiver
        self.nonce = nonce
        self.proof = proof
    }
}

/// A decoded frame.
public enum PeerFrame: Hashable, Sendable {
    case handshake(PeerHandshake)
    case messages([Message])
    case refusal(String)
    case probe(UInt64)
    case probeAnswer(UInt64)
    case proof([UInt8])
}

/// A frame to send. Messages are encoded before they are queued (so the queue's byte bound is
/// exact), which is why the messages case carries encoded bytes rather than `Message` values.
public enum PeerOutboundFrame: Sendable {
    case handshake(PeerHandshake)
    /// `count` messages, each encoded with `PeerWire.encode(_:into:)`, concatenated in `bytes`.
    case messages(count: Int, bytes: ByteBuffer)
    case refusal(String)
    case probe(UInt64)
    case probeAnswer(UInt64)
    case proof([UInt8])
}

/// Peer bytes that do not form a valid frame. The connection they came on is dropped.
public enum PeerWireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A frame length of zero or above the limit (`peer-frame-bytes-max`).
    case badFrameLength(UInt32, max: Int)
    /// A frame type this version does not know.
    case unknownFrameType(UInt8)
    /// A payload that is truncated, has trailing bytes or holds impossible values.
    case malformed(String)
    /// A handshake that does not start with `KVDP`: not a kvd peer.
    case badMagic
    /// A handshake of a protocol version this kvd does not speak.
    case unsupportedVersion(UInt8)
    /// The connection closed in the middle of a frame.
    case truncatedFrame(Int)

    public var description: String {
        switch self {
        case .badFrameLength(let length, let max): return "peer frame length \(length) is outside 1...\(max)"
        case .unknownFrameType(let type): return "unknown peer frame type \(type)"
        case .malformed(let reason): return "malformed peer frame: \(reason)"
        case .badMagic: return "not a kvd peer (bad handshake magic)"
        case .unsupportedVersion(let version):
            return "peer speaks protocol version \(version), this kvd speaks \(PeerWire.supportedVersions.lowerBound)...\(PeerWire.version)"
        case .truncatedFrame(let bytes): return "connection closed inside a peer frame (\(bytes) bytes pending)"
        }
    }
}

extension PeerWire {
    /// Appends `frame`, header included, to `buffer`.
    public static func write(_ frame: PeerOutboundFrame, to buffer: inout ByteBuffer) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0), endianness: .little)
        switch frame {
        case .handshake(let handshake):
            buffer.writeInteger(FrameType.handshake.rawValue)
            buffer.writeBytes(magic)
            buffer.writeInteger(handshake.version)
            let cluster = Array(handshake.clusterID.utf8)
            buffer.writeInteger(UInt64(cluster.count), endianness: .little)
            buffer.writeBytes(cluster)
            buffer.writeInteger(handshake.sender.rawValue, endianness: .little)
            buffer.writeInteger(handshake.receiver.rawValue, endianness: .little)
            if handshake.version >= secretVersion {
                let nonce = handshake.nonce ?? [UInt8](repeating: 0, count: PeerSecret.nonceBytes)
                buffer.writeInteger(UInt8(handshake.proof == nil ? 0 : 1))
                buffer.writeBytes(nonce.prefix(PeerSecret.nonceBytes))
                if let proof = handshake.proof { buffer.writeBytes(proof.prefix(PeerSecret.proofBytes)) }
            }
        case .proof(let proof):
            buffer.writeInteger(FrameType.proof.rawValue)
            buffer.writeBytes(proof.prefix(PeerSecret.proofBytes))
        case .messages(let count, let bytes):
            buffer.writeInteger(FrameType.messages.rawValue)
            buffer.writeInteger(UInt32(truncatingIfNeeded: count), endianness: .little)
            buffer.writeImmutableBuffer(bytes)
        case .refusal(let reason):
            buffer.writeInteger(FrameType.refusal.rawValue)
            buffer.writeBytes(Array(reason.utf8.prefix(1024)))
        case .probe(let sequence):
            buffer.writeInteger(FrameType.probe.rawValue)
            buffer.writeInteger(sequence, endianness: .little)
        case .probeAnswer(let sequence):
            buffer.writeInteger(FrameType.probeAnswer.rawValue)
            buffer.writeInteger(sequence, endianness: .little)
        }
        let length = buffer.writerIndex - lengthIndex - 4
        buffer.setInteger(UInt32(truncatingIfNeeded: length), at: lengthIndex, endianness: .little)
    }

    /// Decodes one frame's type byte and payload (the bytes after the length).
    public static func decodeFrame(type: UInt8, payload: [UInt8]) throws(PeerWireError) -> PeerFrame {
        guard let known = FrameType(rawValue: type) else { throw .unknownFrameType(type) }
        var reader = BinaryReader(payload)
        do {
            switch known {
            case .handshake: return .handshake(try decodeHandshake(&reader, payload: payload))
            case .messages:
                var count: UInt64 = 0
                for shift in 0..<4 { count |= UInt64(try reader.readByte()) << (8 * UInt64(shift)) }
                // Each message takes at least `messageBytesMin`, so a count that cannot fit is
                // refused before anything is allocated for it.
                guard count <= UInt64(payload.count / messageBytesMin) else {
                    throw PeerWireError.malformed("\(count) messages cannot fit in \(payload.count) bytes")
                }
                var messages: [Message] = []
                messages.reserveCapacity(Int(count))
                for _ in 0..<count { messages.append(try decodeMessage(&reader, total: payload.count)) }
                try reader.finish()
                return .messages(messages)
            case .refusal:
                return .refusal(String(decoding: payload, as: UTF8.self))
            case .probe, .probeAnswer:
                let sequence = try reader.readUInt64()
                try reader.finish()
                return known == .probe ? .probe(sequence) : .probeAnswer(sequence)
            case .proof:
                guard payload.count == PeerSecret.proofBytes else {
                    throw PeerWireError.malformed("a proof of \(payload.count) bytes, not \(PeerSecret.proofBytes)")
                }
                return .proof(payload)
            }
        } catch let error as PeerWireError {
            throw error
        } catch let error as DecodingError {
            throw .malformed(error.description)
        } catch {
            throw .malformed("\(error)")
        }
    }

    private static func decodeHandshake(_ reader: inout BinaryReader, payload: [UInt8]) throws -> PeerHandshake {
        var found: [UInt8] = []
        for _ in 0..<magic.count { found.append(try reader.readByte()) }
        guard found == magic else { throw PeerWireError.badMagic }
        let version = try reader.readByte()
        guard supportedVersions.contains(version) else { throw PeerWireError.unsupportedVersion(version) }
        let cluster = try reader.readBytes()
        guard cluster.count <= clusterIDBytesMax, let clusterID = String(validating: cluster, as: UTF8.self) else {
            throw PeerWireError.malformed("handshake cluster id is not short UTF-8 text")
        }
        let sender = NodeID(try reader.readUInt64())
        let receiver = NodeID(try reader.readUInt64())
        var nonce: [UInt8]?
        var proof: [UInt8]?
        if version >= secretVersion {
            let flags = try reader.readByte()
            guard flags <= 1 else { throw PeerWireError.malformed("handshake flags \(flags)") }
            nonce = try (0..<PeerSecret.nonceBytes).map { _ in try reader.readByte() }
            if flags == 1 { proof = try (0..<PeerSecret.proofBytes).map { _ in try reader.readByte() } }
        }
        try reader.finish()
        return PeerHandshake(clusterID: clusterID, sender: sender, receiver: receiver, version: version, nonce: nonce, proof: proof)
    }
}

/// Splits a byte stream into frames. A pure value type, so the NIO decoder stays a thin shell and
/// tests can feed it bytes one at a time without a channel.
public struct PeerFrameParser: Sendable {
    /// Largest accepted `length` field (`peer-frame-bytes-max`).
    public let frameBytesMax: Int

    /// A parser refusing frames longer than `frameBytesMax`.
    public init(frameBytesMax: Int) { self.frameBytesMax = frameBytesMax }

    /// The next complete frame at the front of `buffer` (consumed), or nil if more bytes are
    /// needed. A bad length is refused as soon as the 4 length bytes arrive, before any payload is
    /// buffered, so a hostile peer cannot make the node hold a huge buffer.
    public func next(from buffer: inout ByteBuffer) throws(PeerWireError) -> PeerFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return nil
        }
        guard length >= 1, Int(length) <= frameBytesMax else { throw .badFrameLength(length, max: frameBytesMax) }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        guard let type = buffer.readInteger(as: UInt8.self), let payload = buffer.readBytes(length: Int(length) - 1)
        else { throw .malformed("frame shorter than its length") }  // unreachable: length was checked
        return try PeerWire.decodeFrame(type: type, payload: payload)
    }
}
