/// Redis-style glob matching of byte strings, for `KEYS`, `SCAN ... MATCH` and `CONFIG GET`: `*`
/// matches any run of bytes, `?` any one byte, `[abc]`, `[^abc]` and `[a-z]` one byte of a set,
/// `\` escapes the next byte. `CONFIG GET` matches case-insensitively (parameter names are), keys
/// exactly. Backtracks only to the last `*`, so it is linear in practice.
enum Glob {
    static func matches(_ pattern: [UInt8], _ text: [UInt8], ignoringCase: Bool = true) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
                continue
            }
            if p < pattern.count, let width = matchOne(pattern, at: p, text[t], ignoringCase: ignoringCase) {
                p += width
                t += 1
                continue
            }
            guard let star else { return false }
            p = star + 1
            resume += 1
            t = resume
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    /// The bytes before the first special character: every match starts with them, so a search
    /// may be limited to keys with this prefix.
    static func literalPrefix(_ pattern: [UInt8]) -> [UInt8] {
        var prefix: [UInt8] = []
        var index = 0
        while index < pattern.count {
            switch pattern[index] {
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["): return prefix
            case UInt8(ascii: "\\") where index + 1 < pattern.count:
                prefix.append(pattern[index + 1])
                index += 2
            default:
                prefix.append(pattern[index])
                index += 1
            }
        }
        return prefix
    }

    /// If the pattern element at `p` matches `byte`, the element's width in the pattern.
    private static func matchOne(_ pattern: [UInt8], at p: Int, _ byte: UInt8, ignoringCase: Bool) -> Int? {
        let fold = { (value: UInt8) in ignoringCase ? lower(value) : value }
        switch pattern[p] {
        case UInt8(ascii: "?"): return 1
        case UInt8(ascii: "\\") where p + 1 < pattern.count: return fold(pattern[p + 1]) == fold(byte) ? 2 : nil
        case UInt8(ascii: "["):
            guard let (matched, width) = matchSet(pattern, at: p, fold(byte), fold: fold) else {
                return fold(pattern[p]) == fold(byte) ? 1 : nil
            }
            return matched ? width : nil
        default: return fold(pattern[p]) == fold(byte) ? 1 : nil
        }
    }

    /// `[...]` at `p`: whether `byte` is in the set, and the set's width; nil if the bracket is
    /// never closed (then `[` is an ordinary byte).
    private static func matchSet(_ pattern: [UInt8], at p: Int, _ byte: UInt8, fold: (UInt8) -> UInt8) -> (Bool, Int)? {
        var index = p + 1
        let negated = index < pattern.count && pattern[index] == UInt8(ascii: "^")
        if negated { index += 1 }
        var found = false
        var first = true
        while index < pattern.count, first || pattern[index] != UInt8(ascii: "]") {
            first = false
            var low = pattern[index]
            if low == UInt8(ascii: "\\"), index + 1 < pattern.count {
                index += 1
                low = pattern[index]
            }
            if index + 2 < pattern.count, pattern[index + 1] == UInt8(ascii: "-"), pattern[index + 2] != UInt8(ascii: "]") {
                let high = pattern[index + 2]
                let (from, to) = (min(fold(low), fold(high)), max(fold(low), fold(high)))
                if byte >= from && byte <= to { found = true }
                index += 3
            } else {
                if fold(low) == byte { found = true }
                index += 1
            }
        }
        guard index < pattern.count else { return nil }
        return (found != negated, index + 1 - p)
    }

    private static func lower(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte + 32 : byte }
}
