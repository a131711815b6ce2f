/// Splits an inline request line into arguments with Redis's rules (`sdssplitargs`):
/// arguments are separated by whitespace; `"..."` understands `\n`, `\r`, `\t`, `\b`, `\a`,
/// `\xHH` and `\<any>`; `'...'` understands only `\'`; a quote may start mid-word (`a"b c"` is
/// `ab c`), and a closing quote must be followed by whitespace or the end of the line.
func splitInlineRequest(_ line: ArraySlice<UInt8>) throws(RESPProtocolError) -> [[UInt8]] {
    var arguments: [[UInt8]] = []
    var index = line.startIndex
    while true {
        while index < line.endIndex && isInlineSpace(line[index]) { index += 1 }
        if index == line.endIndex { return arguments }
        var argument: [UInt8] = []
        var quote: UInt8? = nil
        argumentLoop: while true {
            guard index < line.endIndex else {
                if quote != nil { throw .unbalancedQuotes }
                break argumentLoop
            }
            let byte = line[index]
            switch quote {
            case nil:
                if isInlineSpace(byte) { break argumentLoop }
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                    quote = byte
                } else {
                    argument.append(byte)
                }
                index += 1
            case .some(let open):
                if byte == open {
                    index += 1
                    // Redis refuses `"a"b`: the closing quote must end the argument.
                    if index < line.endIndex && !isInlineSpace(line[index]) { throw .unbalancedQuotes }
                    break argumentLoop
                }
                index = readQuotedByte(line, at: index, quote: open, into: &argument)
            }
        }
        arguments.append(argument)
    }
}

/// Appends the byte (or escape sequence) at `index` inside a quoted argument; returns the index
/// after it.
private func readQuotedByte(_ line: ArraySlice<UInt8>, at index: Int, quote: UInt8, into argument: inout [UInt8]) -> Int {
    let byte = line[index]
    let next: UInt8? = index + 1 < line.endIndex ? line[index + 1] : nil
    guard byte == UInt8(ascii: "\\"), let next else {
        argument.append(byte)
        return index + 1
    }
    if quote == UInt8(ascii: "'") {
        // Single quotes only know `\'`.
        if next == UInt8(ascii: "'") {
            argument.append(next)
            return index + 2
        }
        argument.append(byte)
        return index + 1
    }
    if next == UInt8(ascii: "x"), index + 3 < line.endIndex,
        let high = hexValue(line[index + 2]), let low = hexValue(line[index + 3])
    {
        argument.append(high << 4 | low)
        return index + 4
    }
    switch next {
    case UInt8(ascii: "n"): argument.append(10)
    case UInt8(ascii: "r"): argument.append(13)
    case UInt8(ascii: "t"): argument.append(9)
    case UInt8(ascii: "b"): argument.append(8)
    case UInt8(ascii: "a"): argument.append(7)
    default: argument.append(next)
    }
    return index + 2
}

private func isInlineSpace(_ byte: UInt8) -> Bool {
    // C's isspace(): space, \t, \n, \v, \f, \r.
    byte == 32 || (9...13).contains(byte)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}
