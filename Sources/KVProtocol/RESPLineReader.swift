import NIOCore

/// Finds CRLF-terminated lines in a growing buffer without rescanning bytes it has already seen,
/// so a long line that arrives one byte at a time costs linear, not quadratic, time.
struct RESPLineReader: Sendable {
    /// Bytes after the buffer's reader index already known to hold no `\n`.
    private var scannedBytes = 0

    /// How a line must end.
    enum Ending {
        /// `\r\n` only (headers and reply lines): a bare `\n` is a protocol error.
        case crlf
        /// `\n`, with an optional `\r` before it (inline requests typed into `nc`).
        case lfOrCRLF
    }

    /// Consumes and returns the next line without its ending, or `nil` if it is not complete yet.
    /// A line longer than `limit` bytes throws `tooLong` as soon as that is certain.
    mutating func readLine(
        _ buffer: inout ByteBuffer,
        ending: Ending,
        limit: Int,
        tooLong: RESPProtocolError
    ) throws(RESPProtocolError) -> [UInt8]? {
        let readable = buffer.readableBytes
        let newline: Int? = buffer.withUnsafeReadableBytes { raw in
            scannedBytes < raw.count ? raw[scannedBytes...].firstIndex(of: UInt8(ascii: "\n")) : nil
        }
        guard let newline else {
            // Any later newline would leave more than `limit` bytes before the CRLF.
            if readable >= limit + 2 { throw tooLong }
            scannedBytes = readable
            return nil
        }
        scannedBytes = 0
        let hasCR = newline > 0 && buffer.getInteger(at: buffer.readerIndex + newline - 1, as: UInt8.self) == 13
        let length = hasCR ? newline - 1 : newline
        if length > limit { throw tooLong }
        if ending == .crlf && !hasCR { throw .expectedCRLF }
        let line = buffer.readBytes(length: length) ?? []
        buffer.moveReaderIndex(forwardBy: newline + 1 - length)
        return line
    }

    /// Forgets the scan position; call when the reader index moved for another reason.
    mutating func reset() {
        scannedBytes = 0
    }
}

/// Parses a RESP decimal integer strictly, as Redis's `string2ll` does: an optional `-`, then
/// digits without a leading zero (except `0` itself), no spaces, no overflow.
func parseRESPInteger(_ bytes: [UInt8]) -> Int64? {
    var digits = bytes[...]
    let negative = digits.first == UInt8(ascii: "-")
    if negative { digits = digits.dropFirst() }
    guard let first = digits.first, digits.count <= 19 else { return nil }
    if first == UInt8(ascii: "0") { return digits.count == 1 && !negative ? 0 : nil }
    var value: Int64 = 0
    for byte in digits {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
        guard !overflow1, !overflow2 else { return nil }
        value = sum
    }
    return negative ? -value : value
}

/// Reads a bulk payload of `length` bytes plus its CRLF, or returns `nil` if not all arrived yet.
func readRESPBulkPayload(_ buffer: inout ByteBuffer, length: Int) throws(RESPProtocolError) -> [UInt8]? {
    guard buffer.readableBytes >= length + 2 else { return nil }
    let crIndex = buffer.readerIndex + length
    guard buffer.getInteger(at: crIndex, as: UInt8.self) == 13,
        buffer.getInteger(at: crIndex + 1, as: UInt8.self) == 10
    else { throw .expectedCRLF }
    let payload = buffer.readBytes(length: length) ?? []
    buffer.moveReaderIndex(forwardBy: 2)
    return payload
}
