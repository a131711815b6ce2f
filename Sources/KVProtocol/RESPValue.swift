public import NIOCore

/// One RESP2 value, as sent in a reply (and, as an array of bulk strings, in a request).
///
/// Bulk strings are binary-safe byte arrays. Simple strings and errors are text lines: they can
/// not contain CR or LF, so the encoder replaces those with spaces rather than break the framing.
public enum RESPValue: Hashable, Sendable {
    /// `+text\r\n`, e.g. `+OK`.
    case simpleString(String)
    /// `-CODE detail\r\n`; the first word is the error code (see docs/PROTOCOL.md).
    case error(String)
    /// `:n\r\n`.
    case integer(Int64)
    /// `$len\r\nbytes\r\n`; binary-safe.
    case bulkString([UInt8])
    /// `$-1\r\n`: the nil reply of `GET` on a missing key.
    case nullBulkString
    /// `*count\r\n` followed by the elements.
    case array([RESPValue])
    /// `*-1\r\n`.
    case nullArray

    /// `+OK`.
    public static let ok = RESPValue.simpleString("OK")

    /// A bulk string holding the UTF-8 bytes of `text`.
    public static func bulkString(_ text: String) -> RESPValue {
        .bulkString(Array(text.utf8))
    }

    /// A request as a client sends it: an array of bulk strings.
    public static func command(_ arguments: [[UInt8]]) -> RESPValue {
        .array(arguments.map { .bulkString($0) })
    }

    /// A request as a client sends it, from text arguments.
    public static func command(_ arguments: [String]) -> RESPValue {
        .array(arguments.map { .bulkString(Array($0.utf8)) })
    }

    /// The bytes of a bulk string, or the UTF-8 bytes of a simple string; `nil` otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        case .error, .integer, .nullBulkString, .array, .nullArray: return nil
        }
    }

    /// The text of a bulk or simple string (invalid UTF-8 is repaired); `nil` otherwise.
    public var text: String? {
        bytes.map { String(decoding: $0, as: UTF8.self) }
    }

    /// `true` for the two nil replies (`$-1` and `*-1`).
    public var isNull: Bool {
        switch self {
        case .nullBulkString, .nullArray: return true
        case .simpleString, .error, .integer, .bulkString, .array: return false
        }
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short human-readable rendering for logs and test failures (not the wire format).
    public var description: String {
        switch self {
        case .simpleString(let text): return "+\(text)"
        case .error(let text): return "-\(text)"
        case .integer(let value): return ":\(value)"
        case .bulkString(let bytes): return "$\(String(decoding: bytes, as: UTF8.self).debugDescription)"
        case .nullBulkString: return "$nil"
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .nullArray: return "*nil"
        }
    }
}

extension ByteBuffer {
    /// Appends the RESP2 encoding of `value`; returns the number of bytes written.
    @discardableResult
    public mutating func writeRESPValue(_ value: RESPValue) -> Int {
        let start = writerIndex
        switch value {
        case .simpleString(let text):
            writeRESPLine(prefix: UInt8(ascii: "+"), text)
        case .error(let text):
            writeRESPLine(prefix: UInt8(ascii: "-"), text)
        case .integer(let number):
            writeRESPLine(prefix: UInt8(ascii: ":"), String(number))
        case .bulkString(let bytes):
            writeRESPLine(prefix: UInt8(ascii: "$"), String(bytes.count))
            writeBytes(bytes)
            writeRESPCRLF()
        case .nullBulkString:
            writeRESPLine(prefix: UInt8(ascii: "$"), "-1")
        case .array(let elements):
            writeRESPLine(prefix: UInt8(ascii: "*"), String(elements.count))
            for element in elements {
                writeRESPValue(element)
            }
        case .nullArray:
            writeRESPLine(prefix: UInt8(ascii: "*"), "-1")
        }
        return writerIndex - start
    }

    /// Appends a request (an array of bulk strings) without building a `RESPValue` first.
    @discardableResult
    public mutating func writeRESPCommand(_ arguments: [[UInt8]]) -> Int {
        let start = writerIndex
        writeRESPLine(prefix: UInt8(ascii: "*"), String(arguments.count))
        for argument in arguments {
            writeRESPLine(prefix: UInt8(ascii: "$"), String(argument.count))
            writeBytes(argument)
            writeRESPCRLF()
        }
        return writerIndex - start
    }

    private mutating func writeRESPLine(prefix: UInt8, _ text: String) {
        writeInteger(prefix)
        // A CR or LF inside a line would end the frame early and desynchronise the peer.
        for byte in text.utf8 {
            writeInteger(byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") ? UInt8(ascii: " ") : byte)
        }
        writeRESPCRLF()
    }

    private mutating func writeRESPCRLF() {
        writeInteger(UInt8(ascii: "\r"))
        writeInteger(UInt8(ascii: "\n"))
    }
}

/// Encodes outbound `RESPValue`s (the server's replies) into bytes.
public struct RESPValueEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = RESPValue

    public init() {}

    public func encode(data: RESPValue, out: inout ByteBuffer) throws {
        out.writeRESPValue(data)
    }
}

/// Encodes outbound requests (argument lists) as RESP arrays of bulk strings.
public struct RESPCommandEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = [[UInt8]]

    public init() {}

    public func encode(data: [[UInt8]], out: inout ByteBuffer) throws {
        out.writeRESPCommand(data)
    }
}
