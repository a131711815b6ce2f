/// `SCAN`'s cursor: the last key examined, written as a decimal number so that clients that
/// parse cursors as integers (redis-py, the Tcl suite) accept it. `0` starts and ends a scan.
///
/// The key is the cursor, not a position: a scan continues from the same place on any node and
/// across failovers, and every key present for the whole scan is returned exactly once (keys come
/// in byte order). Cursors of long keys exceed 64 bits; clients that parse them into a 64-bit
/// integer cannot use them (docs/PROTOCOL.md).
enum ScanCursor {
    /// The longest cursor accepted: the key bytes limit in decimal, with room to spare.
    static let digitsMax = 2_600

    /// `0x01` followed by the key, read as a big-endian number, in decimal.
    static func encode(_ key: [UInt8]) -> String {
        var number: [UInt32] = [1]  // base 2^32 limbs, most significant first
        for byte in key {
            var carry = UInt64(byte)
            for index in number.indices.reversed() {
                let value = UInt64(number[index]) << 8 | carry
                number[index] = UInt32(truncatingIfNeeded: value)
                carry = value >> 32
            }
            if carry > 0 { number.insert(UInt32(carry), at: 0) }
        }
        var digits: [String] = []
        while !(number.count == 1 && number[0] == 0) {
            var remainder: UInt64 = 0
            for index in number.indices {
                let value = remainder << 32 | UInt64(number[index])
                number[index] = UInt32(value / 1_000_000_000)
                remainder = value % 1_000_000_000
            }
            while number.count > 1, number[0] == 0 { number.removeFirst() }
            digits.append(String(remainder))
        }
        guard let last = digits.popLast() else { return "0" }
        return last + digits.reversed().map { String(repeating: "0", count: 9 - $0.count) + $0 }.joined()
    }

    /// The key a cursor stands for; nil for `0` (start); throws for anything not made by `encode`.
    static func decode(_ text: [UInt8]) throws(CommandError) -> [UInt8]? {
        guard !text.isEmpty, text.count <= digitsMax, text.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw CommandError("invalid cursor")
        }
        var bytes: [UInt8] = [0]  // base 256, most significant first
        for digit in text {
            var carry = UInt32(digit - 48)
            for index in bytes.indices.reversed() {
                let value = UInt32(bytes[index]) * 10 + carry
                bytes[index] = UInt8(truncatingIfNeeded: value)
                carry = value >> 8
            }
            while carry > 0 {
                bytes.insert(UInt8(truncatingIfNeeded: carry), at: 0)
                carry >>= 8
            }
        }
        while bytes.count > 1, bytes[0] == 0 { bytes.removeFirst() }
        if bytes == [0] { return nil }
        guard bytes.first == 1 else { throw CommandError("invalid cursor") }
        return Array(bytes.dropFirst())
    }
}
