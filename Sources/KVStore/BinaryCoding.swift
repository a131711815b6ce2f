/// Appends fixed-width little-endian integers and length-prefixed byte strings.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }

    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// A byte string prefixed by its length.
    public mutating func write(_ value: [UInt8]) {
        write(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func write(optional value: UInt64?) {
        write(value != nil)
        if let value { write(value) }
    }
}

/// Reads what `BinaryWriter` wrote, refusing truncated or oversized input with a typed error
/// instead of trapping: stored or received bytes are never trusted.
public struct BinaryReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func readByte() throws(DecodingError) -> UInt8 {
        guard offset < bytes.count else { throw DecodingError(offset: offset, reason: "truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt64() throws(DecodingError) -> UInt64 {
        guard bytes.count - offset >= 8 else { throw DecodingError(offset: offset, reason: "truncated integer") }
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(bytes[offset + shift]) << (8 * UInt64(shift)) }
        offset += 8
        return value
    }

    public mutating func readInt64() throws(DecodingError) -> Int64 { Int64(bitPattern: try readUInt64()) }

    public mutating func readBool() throws(DecodingError) -> Bool {
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let other: throw DecodingError(offset: offset - 1, reason: "bad boolean \(other)")
        }
    }

    public mutating func readBytes() throws(DecodingError) -> [UInt8] {
        let count = try readUInt64()
        guard count <= UInt64(bytes.count - offset) else {
            throw DecodingError(offset: offset, reason: "length \(count) exceeds the \(bytes.count - offset) bytes left")
        }
        defer { offset += Int(count) }
        return Array(bytes[offset..<offset + Int(count)])
    }

    public mutating func readOptionalUInt64() throws(DecodingError) -> UInt64? {
        try readBool() ? try readUInt64() : nil
    }

    /// Fails unless every byte was consumed.
    public func finish() throws(DecodingError) {
        guard isAtEnd else { throw DecodingError(offset: offset, reason: "\(bytes.count - offset) trailing bytes") }
    }
}

/// Bytes that do not decode; `offset` is where decoding stopped.
public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "undecodable bytes at offset \(offset): \(reason)" }
}
