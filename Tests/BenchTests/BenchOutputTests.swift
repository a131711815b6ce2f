import KVProtocol
import Testing

@testable import kvctl

@Suite struct BenchOutputTests {
    static func result(clients: Int, throughput: Double, latencyMicros: UInt64) -> BenchRunResult {
        var recorder = BenchRecorder(measureFrom: 0)
        for index in 0..<100 {
            recorder.recordSuccess(latencyNanos: (latencyMicros + UInt64(index)) * 1000, completedAt: UInt64(index) * 10_000_000)
        }
        recorder.recordFailure(.errorReply("NOTLEADER 2 127.0.0.1:7002"), completedAt: 1)
        recorder.recordFailure(.transport(.timedOut), completedAt: 1)
        return BenchRunResult(clients: clients, recorder: recorder, seconds: 100 / throughput)
    }

    static let sweep = [1, 2, 4, 8, 16].map { result(clients: $0, throughput: 100 * Double($0) / (1 + 0.1 * Double($0 - 1)), latencyMicros: 500 * UInt64($0)) }

    @Test func svgIsWellFormed() throws {
        let fit = USLFit.fit(Self.sweep.map { (Double($0.clients), $0.throughput) })
        let svg = BenchSVG.render(Self.sweep, fit: fit, title: "kvctl bench put <kvd & redis> \"quoted\"")
        try checkWellFormed(svg)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.contains("&lt;kvd &amp; redis&gt; &quot;quoted&quot;"))
        // Five measured points and one fitted curve in the throughput panel, three latency lines.
        #expect(svg.ranges(of: "<circle").count == 5 + 3 * 5)
        #expect(svg.ranges(of: "<polyline").count == 1 + 3)
        #expect(!svg.contains("nan") && !svg.contains("inf"))
    }

    @Test func svgWithoutFitOrLatency() throws {
        let empty = [1, 2].map { BenchRunResult(clients: $0, recorder: BenchRecorder(measureFrom: 0), seconds: 1) }
        try checkWellFormed(BenchSVG.render(empty, fit: nil, title: "nothing answered"))
    }

    @Test func errorKindsAreClassified() {
        #expect(BenchFailureKind.errorReply("NOTLEADER 2 x") == BenchFailureKind(name: "NOTLEADER", indeterminate: false))
        #expect(BenchFailureKind.errorReply("ERR unknown command") == BenchFailureKind(name: "ERR", indeterminate: false))
        #expect(BenchFailureKind.errorReply("TIMEOUT no commit").indeterminate)
        #expect(BenchFailureKind.errorReply("UNAVAILABLE leadership lost").indeterminate)
        #expect(BenchFailureKind.transport(.closed).indeterminate)
        #expect(BenchFailureKind.transport(.timedOut).indeterminate)
        #expect(!BenchFailureKind.transport(.notSent).indeterminate)
        #expect(!BenchFailureKind.unreachable.indeterminate)
    }

    @Test func recorderMergesAndReports() {
        var merged = Self.sweep[0].recorder
        merged.merge(Self.sweep[1].recorder)
        #expect(merged.succeeded == 200)
        #expect(merged.definiteFailures == 2 && merged.indeterminateFailures == 2)
        #expect(merged.perSecond.reduce(0, +) == 200)
        #expect(merged.latencyMillis(50) > 0.5 && merged.latencyMillis(50) < 1.1)
        #expect(abs(merged.maxLatencyMillis - 1.099) < 0.01)
    }

    @Test func jsonIsValidAndComplete() throws {
        let plan = try BenchPlan.validated(BenchRawOptions(clients: "1,2,4,8,16"), endpoints: [KVEndpoint(host: "h", port: 1)])
        let fit = USLFit.fit(Self.sweep.map { (Double($0.clients), $0.throughput) })
        let text = BenchReport.json(plan, target: KVEndpoint(host: "h", port: 1), label: "kvd \"3\"", results: Self.sweep, fit: fit).rendered()
        try checkJSON(text)
        #expect(text.contains("\"usl\":{\"lambda\":100"))
        #expect(text.contains("\"p99.9\":"))
        #expect(text.contains("\"label\":\"kvd \\\"3\\\"\""))
        #expect(text.contains("{\"kind\":\"NOTLEADER\",\"indeterminate\":false,\"count\":1}"))
    }

    @Test func formatting() {
        #expect(BenchFormat.fixed(1.005, digits: 1) == "1.0")
        #expect(BenchFormat.fixed(-2.5, digits: 2) == "-2.50")
        #expect(BenchFormat.fixed(0.0004, digits: 3) == "0.000")
        #expect(BenchFormat.decimal(12.3400, digits: 4) == "12.34")
        #expect(BenchFormat.decimal(-0.00001, digits: 3) == "0")
        #expect(BenchJSON.string("a\"b\\c\n\u{1}").rendered() == "\"a\\\"b\\\\c\\n\\u0001\"")
        #expect(BenchJSON.number(.nan).rendered() == "null")
    }
}

/// A small XML well-formedness check: tags nest and close, attributes are quoted, every `&` starts
/// a known entity, and nothing but whitespace sits outside the root element.
func checkWellFormed(_ xml: String) throws {
    var stack: [String] = []
    var rest = Substring(xml)
    var sawRoot = false
    while let open = rest.firstIndex(of: "<") {
        let textBefore = rest[..<open]
        if stack.isEmpty, !textBefore.allSatisfy(\.isWhitespace) { throw XMLCheckError("text outside the root: \(textBefore)") }
        try checkEntities(textBefore)
        guard let close = rest[open...].firstIndex(of: ">") else { throw XMLCheckError("unterminated tag") }
        let tag = rest[rest.index(after: open)..<close]
        rest = rest[rest.index(after: close)...]
        if tag.hasPrefix("/") {
            let name = String(tag.dropFirst())
            guard stack.popLast() == name else { throw XMLCheckError("mismatched </\(name)>") }
            continue
        }
        let selfClosing = tag.hasSuffix("/")
        let body = selfClosing ? tag.dropLast() : tag
        let name = String(body.prefix { !$0.isWhitespace })
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == ":" }) else {
            throw XMLCheckError("bad tag name '\(name)'")
        }
        try checkAttributes(body.dropFirst(name.count))
        if stack.isEmpty {
            guard !sawRoot else { throw XMLCheckError("second root element") }
            sawRoot = true
        }
        if !selfClosing { stack.append(name) }
    }
    guard stack.isEmpty, sawRoot, rest.allSatisfy(\.isWhitespace) else { throw XMLCheckError("unclosed \(stack)") }
}

private func checkAttributes(_ text: Substring) throws {
    var rest = text.drop { $0.isWhitespace }
    while !rest.isEmpty {
        guard let equals = rest.firstIndex(of: "=") else { throw XMLCheckError("attribute without value: \(rest)") }
        let name = rest[..<equals]
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == ":" }) else { throw XMLCheckError("bad attribute \(name)") }
        rest = rest[rest.index(after: equals)...]
        guard rest.first == "\"" else { throw XMLCheckError("unquoted attribute \(name)") }
        rest = rest.dropFirst()
        guard let end = rest.firstIndex(of: "\"") else { throw XMLCheckError("unterminated attribute \(name)") }
        try checkEntities(rest[..<end])
        guard !rest[..<end].contains("<") else { throw XMLCheckError("< in attribute \(name)") }
        rest = rest[rest.index(after: end)...].drop { $0.isWhitespace }
    }
}

private func checkEntities(_ text: Substring) throws {
    var rest = text
    while let amp = rest.firstIndex(of: "&") {
        let after = rest[amp...]
        guard ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(where: { after.hasPrefix($0) }) else {
            throw XMLCheckError("bare & in \(text)")
        }
        rest = rest[rest.index(after: amp)...]
    }
}

struct XMLCheckError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A small JSON syntax check (recursive descent over the whole text).
func checkJSON(_ text: String) throws {
    var parser = JSONChecker(bytes: Array(text.utf8))
    try parser.value()
    parser.skipSpace()
    guard parser.position == parser.bytes.count else { throw XMLCheckError("trailing JSON at \(parser.position)") }
}

private struct JSONChecker {
    let bytes: [UInt8]
    var position = 0

    mutating func skipSpace() {
        while position < bytes.count, [9, 10, 13, 32].contains(bytes[position]) { position += 1 }
    }

    mutating func value() throws {
        skipSpace()
        guard position < bytes.count else { throw XMLCheckError("JSON ends early") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            skipSpace()
            if bytes[position] == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipSpace()
                try string()
                skipSpace()
                try expect(":")
                try value()
                skipSpace()
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                try expect("}")
                return
            }
        case UInt8(ascii: "["):
            position += 1
            skipSpace()
            if bytes[position] == UInt8(ascii: "]") { position += 1; return }
            while true {
                try value()
                skipSpace()
                if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                try expect("]")
                return
            }
        case UInt8(ascii: "\""): try string()
        default:
            let start = position
            while position < bytes.count, !",]} \n".utf8.contains(bytes[position]) { position += 1 }
            let word = String(decoding: bytes[start..<position], as: UTF8.self)
            guard ["true", "false", "null"].contains(word) || Double(word) != nil else { throw XMLCheckError("bad JSON word \(word)") }
        }
    }

    mutating func string() throws {
        try expect("\"")
        while position < bytes.count, bytes[position] != UInt8(ascii: "\"") {
            guard bytes[position] >= 0x20 else { throw XMLCheckError("control character in JSON string") }
            position += bytes[position] == UInt8(ascii: "\\") ? 2 : 1
        }
        try expect("\"")
    }

    mutating func expect(_ character: Character) throws {
        guard position < bytes.count, bytes[position] == character.asciiValue else {
            throw XMLCheckError("expected \(character) at \(position)")
        }
        position += 1
    }
}
