/// The `name:value` lines of an `INFO` reply (docs/PROTOCOL.md), shared by every reader of it so
/// they agree on the format: lines end with CRLF or LF, `#` lines are section headers, and a
/// value may be empty (`learners:` when there are none).
public enum InfoFields {
    /// The fields in reply order.
    public static func parse(_ text: String) -> [(name: String, value: String)] {
        // Split on `isNewline`: "\r\n" is a single Character, so splitting on "\n" never matches it.
        text.split(whereSeparator: \.isNewline).compactMap { line in
            guard !line.hasPrefix("#"), let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
    }

    /// The fields by name (a repeated name keeps its last value).
    public static func dictionary(_ text: String) -> [String: String] {
        Dictionary(parse(text).map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }
}
