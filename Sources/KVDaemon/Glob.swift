/// Redis-style glob matching of byte strings, for `CONFIG GET`: `*` matches any run of bytes,
/// `?` any one byte, `\` escapes the next byte; matching is case-insensitive for ASCII letters
/// (parameter names are). Backtracks only to the last `*`, so it is linear in practice.
enum Glob {
    static func matches(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
                continue
            }
            if p < pattern.count {
                var expected = pattern[p], width = 1
                if expected == UInt8(ascii: "\\"), p + 1 < pattern.count {
                    expected = pattern[p + 1]
                    width = 2
                }
                if (width == 1 && expected == UInt8(ascii: "?")) || lower(expected) == lower(text[t]) {
                    p += width
                    t += 1
                    continue
                }
            }
            guard let star else { return false }
            p = star + 1
            resume += 1
            t = resume
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }

    private static func lower(_ byte: UInt8) -> UInt8 { byte >= 65 && byte <= 90 ? byte + 32 : byte }
}
