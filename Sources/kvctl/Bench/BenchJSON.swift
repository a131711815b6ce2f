/// A JSON value written by hand (kvctl has no Foundation): objects keep their member order.
indirect enum BenchJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([BenchJSON])
    case object([(String, BenchJSON)])

    static func == (lhs: BenchJSON, rhs: BenchJSON) -> Bool { lhs.rendered() == rhs.rendered() }

    /// Compact JSON; non-finite numbers become null.
    func rendered() -> String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .number(let value): return value.isFinite ? BenchFormat.decimal(value, digits: 6) : "null"
        case .string(let text): return Self.quoted(text)
        case .array(let items): return "[" + items.map { $0.rendered() }.joined(separator: ",") + "]"
        case .object(let members):
            return "{" + members.map { Self.quoted($0.0) + ":" + $0.1.rendered() }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Number formatting without Foundation.
enum BenchFormat {
    /// `value` rounded to `digits` decimals, trailing zeros trimmed (`1.5`, `2`, `0.001`).
    static func decimal(_ value: Double, digits: Int) -> String {
        let text = fixed(value, digits: digits)
        guard text.contains(".") else { return text }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
        if trimmed.hasSuffix(".") { trimmed = trimmed.dropLast() }
        return trimmed == "-0" ? "0" : String(trimmed)
    }

    /// `value` with exactly `digits` decimals (`1.50`).
    static func fixed(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return String(value) }
        let whole = UInt64(scaled)
        let sign = value < 0 && whole != 0 ? "-" : ""
        let integer = String(whole / UInt64(scale))
        guard digits > 0 else { return sign + integer }
        let fraction = String(whole % UInt64(scale))
        return sign + integer + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}
