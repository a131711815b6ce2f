/// The binary form of the Redis string, expiry and transaction operations (tags 14 and up) and of
/// their results (tags 16 and up). Lists are bounded on decode so that a corrupt count cannot
/// allocate without limit.
extension KVOperation {
    /// The most operations one transaction entry may carry, and the most keys in one list.
    static let decodedListMax: UInt64 = 1 << 20

    func encodeRedis(into writer: inout BinaryWriter) {
        switch self {
        case .set(let request):
            writer.write(UInt8(14)); writer.write(request.key); writer.write(request.value)
            request.condition.encode(into: &writer); request.expiry.encode(into: &writer)
            writer.write(request.returnPrevious); request.fence.encode(into: &writer)
        case .expire(let key, let time, let condition):
            writer.write(UInt8(15)); writer.write(key)
            switch time {
            case .after(let millis): writer.write(UInt8(0)); writer.write(millis)
            case .at(let unixMillis): writer.write(UInt8(1)); writer.write(unixMillis)
            }
            writer.write(condition.rawValue)
        case .persist(let key):
            writer.write(UInt8(16)); writer.write(key)
        case .getEx(let key, let change):
            writer.write(UInt8(17)); writer.write(key)
            switch change {
            case .keep: writer.write(UInt8(0))
            case .persist: writer.write(UInt8(1))
            case .expire(let expiry): writer.write(UInt8(2)); expiry.encode(into: &writer)
            }
        case .getDelete(let key):
            writer.write(UInt8(18)); writer.write(key)
        case .deleteIf(let key, let condition, let fence):
            writer.write(UInt8(19)); writer.write(key); condition.encode(into: &writer); fence.encode(into: &writer)
        case .append(let key, let value, let fence):
            writer.write(UInt8(20)); writer.write(key); writer.write(value); fence.encode(into: &writer)
        case .setRange(let key, let offset, let value, let fence):
            writer.write(UInt8(21)); writer.write(key); writer.write(offset); writer.write(value); fence.encode(into: &writer)
        case .incrementFloat(let key, let delta, let fence):
            writer.write(UInt8(22)); writer.write(key); writer.write(delta.bitPattern); fence.encode(into: &writer)
        case .rename(let from, let to, let onlyIfAbsent):
            writer.write(UInt8(23)); writer.write(from); writer.write(to); writer.write(onlyIfAbsent)
        case .copy(let from, let to, let replace):
            writer.write(UInt8(24)); writer.write(from); writer.write(to); writer.write(replace)
        case .multiSet(let pairs, let onlyIfNoneExist):
            writer.write(UInt8(25)); writer.write(pairs); writer.write(onlyIfNoneExist)
        case .flush:
            writer.write(UInt8(26))
        case .expireKeys(let keys):
            writer.write(UInt8(27)); writer.write(keys)
        case .transaction(let operations, let watches):
            writer.write(UInt8(28)); writer.write(UInt64(operations.count))
            for operation in operations { operation.encode(into: &writer) }
            writer.write(UInt64(watches.count))
            for watch in watches {
                writer.write(watch.key); writer.write(watch.modIndex)
            }
        case .read(let read):
            writer.write(UInt8(29)); read.encode(into: &writer)
        case .memberSet(let member):
            writer.write(UInt8(30)); member.encode(into: &writer)
        case .memberRemove(let id):
            writer.write(UInt8(31)); writer.write(id)
        case .put, .delete, .compareAndSwap, .increment, .leaseGrant, .leaseKeepAlive, .leaseRevoke, .leaseExpire,
            .leaseCheckpoint, .lockAcquire, .lockRelease, .fence, .sessionRegister:
            preconditionFailure("encoded by KVOperation.encode")
        }
    }

    init(redisTag tag: UInt8, from reader: inout BinaryReader) throws(DecodingError) {
        switch tag {
        case 14:
            self = .set(
                SetRequest(
                    key: try reader.readBytes(), value: try reader.readBytes(), condition: try SetCondition(from: &reader),
                    expiry: try KeyExpiry(from: &reader), returnPrevious: try reader.readBool(),
                    fence: try FenceCondition?.decode(from: &reader)))
        case 15:
            let key = try reader.readBytes()
            let time: ExpireTime
            switch try reader.readByte() {
            case 0: time = .after(millis: try reader.readInt64())
            case 1: time = .at(unixMillis: try reader.readInt64())
            case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad expire time kind \(other)")
            }
            let condition = ExpireCondition(rawValue: try reader.readByte())
            guard ExpireCondition.all.isSuperset(of: condition) else {
                throw DecodingError(offset: reader.offset - 1, reason: "bad expire condition")
            }
            self = .expire(key: key, at: time, condition: condition)
        case 16: self = .persist(key: try reader.readBytes())
        case 17:
            let key = try reader.readBytes()
            switch try reader.readByte() {
            case 0: self = .getEx(key: key, change: .keep)
            case 1: self = .getEx(key: key, change: .persist)
            case 2: self = .getEx(key: key, change: .expire(try KeyExpiry(from: &reader)))
            case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad GETEX change \(other)")
            }
        case 18: self = .getDelete(key: try reader.readBytes())
        case 19:
            self = .deleteIf(
                key: try reader.readBytes(), condition: try ValueCondition(from: &reader),
                fence: try FenceCondition?.decode(from: &reader))
        case 20:
            self = .append(key: try reader.readBytes(), value: try reader.readBytes(), fence: try FenceCondition?.decode(from: &reader))
        case 21:
            self = .setRange(
                key: try reader.readBytes(), offset: try reader.readUInt64(), value: try reader.readBytes(),
                fence: try FenceCondition?.decode(from: &reader))
        case 22:
            self = .incrementFloat(
                key: try reader.readBytes(), delta: Double(bitPattern: try reader.readUInt64()),
                fence: try FenceCondition?.decode(from: &reader))
        case 23: self = .rename(from: try reader.readBytes(), to: try reader.readBytes(), onlyIfAbsent: try reader.readBool())
        case 24: self = .copy(from: try reader.readBytes(), to: try reader.readBytes(), replace: try reader.readBool())
        case 25: self = .multiSet(pairs: try reader.readByteLists(max: Self.decodedListMax), onlyIfNoneExist: try reader.readBool())
        case 26: self = .flush
        case 27: self = .expireKeys(try reader.readByteLists(max: Self.decodedListMax))
        case 28:
            let count = try reader.readUInt64()
            guard count <= Self.decodedListMax else { throw DecodingError(offset: reader.offset, reason: "too many operations") }
            var operations: [KVOperation] = []
            for _ in 0..<count { operations.append(try KVOperation(from: &reader)) }
            let watchCount = try reader.readUInt64()
            guard watchCount <= Self.decodedListMax else { throw DecodingError(offset: reader.offset, reason: "too many watches") }
            var watches: [WatchedKey] = []
            for _ in 0..<watchCount { watches.append(WatchedKey(key: try reader.readBytes(), modIndex: try reader.readUInt64())) }
            self = .transaction(operations: operations, watches: watches)
        case 29: self = .read(try KVRead(from: &reader))
        case 30: self = .memberSet(try MemberAddresses(from: &reader))
        case 31: self = .memberRemove(id: try reader.readUInt64())
        default: throw DecodingError(offset: reader.offset - 1, reason: "unknown operation \(tag)")
        }
    }
}

extension KeyExpiry {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .none: writer.write(UInt8(0))
        case .keep: writer.write(UInt8(1))
        case .after(let millis): writer.write(UInt8(2)); writer.write(millis)
        case .at(let unixMillis): writer.write(UInt8(3)); writer.write(unixMillis)
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        switch try reader.readByte() {
        case 0: self = .none
        case 1: self = .keep
        case 2: self = .after(millis: try reader.readUInt64())
        case 3: self = .at(unixMillis: try reader.readUInt64())
        case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad key expiry \(other)")
        }
    }
}

extension ValueCondition {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .equal(let value): writer.write(UInt8(0)); writer.write(value)
        case .notEqual(let value): writer.write(UInt8(1)); writer.write(value)
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        switch try reader.readByte() {
        case 0: self = .equal(try reader.readBytes())
        case 1: self = .notEqual(try reader.readBytes())
        case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad value condition \(other)")
        }
    }
}

extension SetCondition {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .always: writer.write(UInt8(0))
        case .ifAbsent: writer.write(UInt8(1))
        case .ifPresent: writer.write(UInt8(2))
        case .value(let condition): writer.write(UInt8(3)); condition.encode(into: &writer)
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        switch try reader.readByte() {
        case 0: self = .always
        case 1: self = .ifAbsent
        case 2: self = .ifPresent
        case 3: self = .value(try ValueCondition(from: &reader))
        case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad set condition \(other)")
        }
    }
}

extension KVRead {
    func encode(into writer: inout BinaryWriter) {
        switch self {
        case .get(let key): writer.write(UInt8(0)); writer.write(key)
        case .mget(let keys): writer.write(UInt8(1)); writer.write(keys)
        case .exists(let keys): writer.write(UInt8(2)); writer.write(keys)
        case .strlen(let key): writer.write(UInt8(3)); writer.write(key)
        case .type(let key): writer.write(UInt8(4)); writer.write(key)
        case .getRange(let key, let start, let end): writer.write(UInt8(5)); writer.write(key); writer.write(start); writer.write(end)
        case .ttl(let key, let form): writer.write(UInt8(6)); writer.write(key); writer.write(form.rawValue)
        case .dbsize: writer.write(UInt8(7))
        case .echo(let message):
            writer.write(UInt8(8)); writer.write(message != nil)
            if let message { writer.write(message) }
        }
    }

    init(from reader: inout BinaryReader) throws(DecodingError) {
        let max = KVOperation.decodedListMax
        switch try reader.readByte() {
        case 0: self = .get(try reader.readBytes())
        case 1: self = .mget(try reader.readByteLists(max: max))
        case 2: self = .exists(try reader.readByteLists(max: max))
        case 3: self = .strlen(try reader.readBytes())
        case 4: self = .type(try reader.readBytes())
        case 5: self = .getRange(try reader.readBytes(), start: try reader.readInt64(), end: try reader.readInt64())
        case 6:
            let key = try reader.readBytes()
            guard let form = TTLForm(rawValue: try reader.readByte()) else {
                throw DecodingError(offset: reader.offset - 1, reason: "bad TTL form")
            }
            self = .ttl(key, form)
        case 7: self = .dbsize
        case 8: self = .echo(try reader.readBool() ? try reader.readBytes() : nil)
        case let other: throw DecodingError(offset: reader.offset - 1, reason: "bad read \(other)")
        }
    }
}

extension KVResult {
    func encodeRedis(into writer: inout BinaryWriter) {
        switch self {
        case .value(let value):
            writer.write(UInt8(16)); writer.write(value != nil)
            if let value { writer.write(value) }
        case .values(let values):
            writer.write(UInt8(17)); writer.write(UInt64(values.count))
            for value in values {
                writer.write(value != nil)
                if let value { writer.write(value) }
            }
        case .status(let word):
            writer.write(UInt8(18)); writer.write(Array(word.utf8))
        case .transaction(let results):
            writer.write(UInt8(19)); writer.write(results != nil)
            if let results {
                writer.write(UInt64(results.count))
                for result in results { writer.write(result.encoded()) }
            }
        case .ok, .notApplied, .deleted, .swapped, .integer, .leaseGranted, .leaseRenewed, .leaseRevoked, .lockGranted,
            .lockQueued, .lockBusy, .lockReleased, .fenceAccepted, .sessionRegistered, .none, .error:
            preconditionFailure("encoded by KVResult.encoded")
        }
    }

    init(redisTag tag: UInt8, from reader: inout BinaryReader) throws(DecodingError) {
        let max = KVOperation.decodedListMax
        switch tag {
        case 16: self = .value(try reader.readBool() ? try reader.readBytes() : nil)
        case 17:
            let count = try reader.readUInt64()
            guard count <= max else { throw DecodingError(offset: reader.offset, reason: "too many values") }
            var values: [[UInt8]?] = []
            for _ in 0..<count { values.append(try reader.readBool() ? try reader.readBytes() : nil) }
            self = .values(values)
        case 18: self = .status(String(decoding: try reader.readBytes(), as: UTF8.self))
        case 19:
            guard try reader.readBool() else {
                self = .transaction(nil)
                return
            }
            let count = try reader.readUInt64()
            guard count <= max else { throw DecodingError(offset: reader.offset, reason: "too many results") }
            var results: [KVResult] = []
            for _ in 0..<count { results.append(try KVResult(decoding: try reader.readBytes())) }
            self = .transaction(results)
        default: throw DecodingError(offset: reader.offset - 1, reason: "unknown result \(tag)")
        }
    }
}

extension BinaryWriter {
    /// A count, then each byte string.
    mutating func write(_ lists: [[UInt8]]) {
        write(UInt64(lists.count))
        for bytes in lists { write(bytes) }
    }
}

extension BinaryReader {
    /// A count, then that many byte strings; refuses counts above `max`.
    mutating func readByteLists(max: UInt64) throws(DecodingError) -> [[UInt8]] {
        let count = try readUInt64()
        guard count <= max else { throw DecodingError(offset: offset, reason: "list of \(count) items; the limit is \(max)") }
        var lists: [[UInt8]] = []
        for _ in 0..<count { lists.append(try readBytes()) }
        return lists
    }
}
