/// The binary form of commands (inside Raft entries) and of results (kept per session). The
/// first byte is a format version so that a newer kvd can refuse, not misread, older bytes.
extension KVCommand {
    static let formatVersion: UInt8 = 1
    /// Format 2 is format 1 with the origin tag (node id, sequence) after the timestamp. Only
    /// forwarded commands use it, so every other command keeps format 1's exact bytes and
    /// existing logs and snapshots decode unchanged.
    static let formatVersionWithOrigin: UInt8 = 2

    /// Encodes this command for a Raft entry.
    public func encoded() -> [UInt8] {
        var writer = BinaryWriter()
        writer.write(origin == nil ? Self.formatVersion : Self.formatVersionWithOrigin)
        writer.write(session != nil)
        if let session {
            writer.write(session.clientID)
            writer.write(session.sequence)
        }
        writer.write(timestampMillis)
        if let origin {
            writer.write(origin.nodeID)
            writer.write(origin.sequence)
        }
        operation.encode(into: &writer)
        return writer.bytes
    }

    /// Decodes a command, refusing any malformed or trailing bytes.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = BinaryReader(bytes)
        let version = try reader.readByte()
        guard version == Self.formatVersion || version == Self.formatVersionWithOrigin else {
            throw DecodingError(offset: 0, reason: "unknown command format \(version)")
        }
        session = try reader.readBool() ? SessionStamp(clientID: try reader.readUInt64(), sequence: try reader.readUInt64()) : nil
        timestampMillis = try reader.readUInt64()
        origin =
            version == Self.formatVersionWithOrigin
            ? ProposalOrigin(nodeID: try reader.readUInt64(), sequence: try reader.readUInt64()) : nil
        operation = try KVOperation(from: &reader)
        try reader.finish()
    }
}

extension FenceCondition? {
    func encode(into writer: inout BinaryWriter) {
        writer.write(self != nil)
        if let fence = self {
            writer.write(fence.lock)
            writer.write(fence.token)
        }
    }

    static func decode(from reader: inout BinaryReader) throws(DecodingError) -> FenceCondition? {
        try reader.readBool() ? FenceCondition(lock: try reader.readBytes(), token: try reader.readUInt64()) : nil
    }
}

extension KVOperation {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .put(let key, let value, let condition, let lease, let fence):
            writer.write(UInt8(1)); writer.write(key); writer.write(value); writer.write(condition.rawValue)
            writer.write(optional: lease); fence.encode(into: &writer)
        case .delete(let keys, let fence):
            writer.write(UInt8(2)); writer.write(UInt64(keys.count))
            for key in keys { writer.write(key) }
            fence.encode(into: &writer)
        case .compareAndSwap(let key, let expected, let value, let fence):
            writer.write(UInt8(3)); writer.write(key)
            switch expected {
            case .value(let old): writer.write(UInt8(0)); writer.write(old)
            case .absent: writer.write(UInt8(1))
            case .modIndex(let index): writer.write(UInt8(2)); writer.write(index)
            }
            writer.write(value); fence.encode(into: &writer)
        case .increment(let key, let delta, let fence):
            writer.write(UInt8(4)); writer.write(key); writer.write(delta); fence.encode(into: &writer)
        case .leaseGrant(let ttl):
            writer.write(UInt8(5)); writer.write(ttl)
        case .leaseKeepAlive(let id):
            writer.write(UInt8(6)); writer.write(id)
        case .leaseRevoke(let id):
            writer.write(UInt8(7)); writer.write(id)
        case .leaseExpire(let id, let term, let epoch):
            writer.write(UInt8(8)); writer.write(id); writer.write(term); writer.write(epoch)
        case .leaseCheckpoint(let term, let checkpoints):
            writer.write(UInt8(9)); writer.write(term); writer.write(UInt64(checkpoints.count))
            for checkpoint in checkpoints {
                writer.write(checkpoint.leaseID); writer.write(checkpoint.epoch); writer.write(checkpoint.remainingMillis)
            }
        case .lockAcquire(let name, let lease, let wait):
            writer.write(UInt8(10)); writer.write(name); writer.write(lease); writer.write(wait)
        case .lockRelease(let name, let token):
            writer.write(UInt8(11)); writer.write(name); writer.write(token)
        case .fence(let name, let token):
            writer.write(UInt8(12)); writer.write(name); writer.write(token)
        case .sessionRegister:
            writer.write(UInt8(13))
        case .set, .expire, .persist, .getEx, .getDelete, .deleteIf, .append, .setRange, .incrementFloat, .rename, .copy,
            .multiSet, .flush, .expireKeys, .transaction, .read, .memberSet, .memberRemove:
            encodeRedis(into: &writer)
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        let tag = try reader.readByte()
        switch tag {
        case 1:
            let key = try reader.readBytes(), value = try reader.readBytes()
            guard let condition = PutCondition(rawValue: try reader.readByte()) else {
                throw DecodingError(offset: reader.offset - 1, reason: "bad put condition")
            }
            self = .put(key: key, value: value, condition: condition, lease: try reader.readOptionalUInt64(),
                fence: try FenceCondition?.decode(from: &reader))
        case 2:
            let count = try reader.readUInt64()
            var keys: [[UInt8]] = []
            for _ in 0..<min(count, 1 << 20) { keys.append(try reader.readBytes()) }
            guard UInt64(keys.count) == count else { throw DecodingError(offset: reader.offset, reason: "too many keys") }
            self = .delete(keys: keys, fence: try FenceCondition?.decode(from: &reader))
        case 3:
            let key = try reader.readBytes()
            let expected: CASExpectation
            switch try reader.readByte() {
            case 0: expected = .value(try reader.readBytes())
            case 1: expected = .absent
            case 2: expected = .modIndex(try reader.readUInt64())
            case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad CAS expectation \(other)")
            }
            self = .compareAndSwap(key: key, expected: expected, value: try reader.readBytes(),
                fence: try FenceCondition?.decode(from: &reader))
        case 4:
            self = .increment(key: try reader.readBytes(), delta: try reader.readInt64(),
                fence: try FenceCondition?.decode(from: &reader))
        case 5: self = .leaseGrant(ttlMillis: try reader.readUInt64())
        case 6: self = .leaseKeepAlive(leaseID: try reader.readUInt64())
        case 7: self = .leaseRevoke(leaseID: try reader.readUInt64())
        case 8:
            self = .leaseExpire(leaseID: try reader.readUInt64(), leaderTerm: try reader.readUInt64(),
                epoch: try reader.readUInt64())
        case 9:
            let term = try reader.readUInt64()
            let count = try reader.readUInt64()
            var checkpoints: [LeaseCheckpoint] = []
            for _ in 0..<min(count, 1 << 20) {
                checkpoints.append(LeaseCheckpoint(leaseID: try reader.readUInt64(), epoch: try reader.readUInt64(),
                    remainingMillis: try reader.readUInt64()))
            }
            guard UInt64(checkpoints.count) == count else { throw DecodingError(offset: reader.offset, reason: "too many checkpoints") }
            self = .leaseCheckpoint(leaderTerm: term, checkpoints: checkpoints)
        case 10:
            self = .lockAcquire(name: try reader.readBytes(), leaseID: try reader.readUInt64(), wait: try reader.readBool())
        case 11: self = .lockRelease(name: try reader.readBytes(), token: try reader.readUInt64())
        case 12: self = .fence(name: try reader.readBytes(), token: try reader.readUInt64())
        case 13: self = .sessionRegister
        default: self = try KVOperation(redisTag: tag, from: &reader)
        }
    }
}

extension KVResult {
    /// Encodes this result (kept as a session's last reply).
    public func encoded() -> [UInt8] {
        var writer = BinaryWriter()
        switch self {
        case .ok: writer.write(UInt8(0))
        case .notApplied: writer.write(UInt8(1))
        case .deleted(let count): writer.write(UInt8(2)); writer.write(count)
        case .swapped(let swapped, let modIndex): writer.write(UInt8(3)); writer.write(swapped); writer.write(modIndex)
        case .integer(let value): writer.write(UInt8(4)); writer.write(value)
        case .leaseGranted(let id, let ttl): writer.write(UInt8(5)); writer.write(id); writer.write(ttl)
        case .leaseRenewed(let ttl): writer.write(UInt8(6)); writer.write(ttl)
        case .leaseRevoked: writer.write(UInt8(7))
        case .lockGranted(let token): writer.write(UInt8(8)); writer.write(token)
        case .lockQueued(let position): writer.write(UInt8(9)); writer.write(position)
        case .lockBusy(let token): writer.write(UInt8(10)); writer.write(token)
        case .lockReleased: writer.write(UInt8(11))
        case .fenceAccepted(let token): writer.write(UInt8(12)); writer.write(token)
        case .sessionRegistered(let id): writer.write(UInt8(13)); writer.write(id)
        case .none: writer.write(UInt8(14))
        case .error(let error): writer.write(UInt8(15)); error.encode(into: &writer)
        case .value, .values, .status, .transaction: encodeRedis(into: &writer)
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var reader = BinaryReader(bytes)
        self = try KVResult(from: &reader)
        try reader.finish()
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        let tag = try reader.readByte()
        switch tag {
        case 0: self = .ok
        case 1: self = .notApplied
        case 2: self = .deleted(count: try reader.readInt64())
        case 3: self = .swapped(try reader.readBool(), modIndex: try reader.readUInt64())
        case 4: self = .integer(try reader.readInt64())
        case 5: self = .leaseGranted(leaseID: try reader.readUInt64(), ttlMillis: try reader.readUInt64())
        case 6: self = .leaseRenewed(ttlMillis: try reader.readUInt64())
        case 7: self = .leaseRevoked
        case 8: self = .lockGranted(token: try reader.readUInt64())
        case 9: self = .lockQueued(position: try reader.readInt64())
        case 10: self = .lockBusy(holderToken: try reader.readUInt64())
        case 11: self = .lockReleased
        case 12: self = .fenceAccepted(token: try reader.readUInt64())
        case 13: self = .sessionRegistered(clientID: try reader.readUInt64())
        case 14: self = .none
        case 15: self = .error(try KVError(from: &reader))
        default: self = try KVResult(redisTag: tag, from: &reader)
        }
    }
}

extension KVError {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .stale(let why): writer.write(UInt8(0)); writer.write(Array(why.utf8))
        case .notInteger: writer.write(UInt8(1))
        case .overflow: writer.write(UInt8(2))
        case .leaseNotFound(let id): writer.write(UInt8(3)); writer.write(id)
        case .ttlTooShort(let minimum): writer.write(UInt8(4)); writer.write(minimum)
        case .lockNotHeld: writer.write(UInt8(5))
        case .sessionExpired(let id): writer.write(UInt8(6)); writer.write(id)
        case .sequenceTooOld(let sequence): writer.write(UInt8(7)); writer.write(sequence)
        case .limitExceeded(let what): writer.write(UInt8(8)); writer.write(Array(what.utf8))
        case .invalid(let why): writer.write(UInt8(9)); writer.write(Array(why.utf8))
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        let tag = try reader.readByte()
        switch tag {
        case 0: self = .stale(String(decoding: try reader.readBytes(), as: UTF8.self))
        case 1: self = .notInteger
        case 2: self = .overflow
        case 3: self = .leaseNotFound(try reader.readUInt64())
        case 4: self = .ttlTooShort(minimumMillis: try reader.readUInt64())
        case 5: self = .lockNotHeld
        case 6: self = .sessionExpired(try reader.readUInt64())
        case 7: self = .sequenceTooOld(try reader.readUInt64())
        case 8: self = .limitExceeded(String(decoding: try reader.readBytes(), as: UTF8.self))
        case 9: self = .invalid(String(decoding: try reader.readBytes(), as: UTF8.self))
        default: throw DecodingError(offset: reader.offset - 1, reason: "unknown error \(tag)")
        }
    }
}
