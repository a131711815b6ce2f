import Linearizability

/// The register history as a text file, one operation per line, so a failed or unchecked run
/// can be checked again offline (`kvd-faults --check-history FILE`).
///
/// Fields are separated by tabs: client, call time, return time (`?` when the outcome is
/// unknown), operation (`get`, `put`, `cas`, `del`), key, then the operation's arguments and
/// output: `get KEY value V` / `get KEY nil`, `put KEY V ok`, `cas KEY EXPECTED NEW swapped|kept`,
/// with `?` for an unknown output. Keys and values never hold tabs or newlines (the workloads
/// make them).
enum HistoryFile {
    static func write(_ operations: [Registers.Operation], to path: String) throws(HarnessError) {
        var lines: [String] = []
        lines.reserveCapacity(operations.count)
        for operation in operations {
            let returned = operation.isOutcomeUnknown ? "?" : String(operation.returnTime)
            var fields = [String(operation.clientID), String(operation.callTime), returned]
            switch operation.input {
            case .get(let key):
                fields += ["get", key]
                switch operation.output {
                case .value(let value?)?: fields += ["value", value]
                case .value(nil)?: fields += ["nil"]
                default: fields += ["?"]
                }
            case .put(let key, let value):
                fields += ["put", key, value, operation.output == nil ? "?" : "ok"]
            case .delete(let key):
                fields += ["del", key, operation.output == nil ? "?" : "ok"]
            case .compareAndSwap(let key, let expected, let new):
                let output: String =
                    switch operation.output {
                    case .swapped(true)?: "swapped"
                    case .swapped(false)?: "kept"
                    default: "?"
                    }
                fields += ["cas", key, expected ?? "", new, output]
            }
            lines.append(fields.joined(separator: "\t"))
        }
        try writeFile(path, lines.joined(separator: "\n") + "\n")
    }

    static func read(_ path: String) throws(HarnessError) -> [Registers.Operation] {
        let text = try readFile(path)
        var operations: [Registers.Operation] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard let operation = parse(fields) else {
                throw HarnessError.badHistoryLine(path: path, line: number + 1, text: String(line))
            }
            operations.append(operation)
        }
        return operations
    }

    private static func parse(_ fields: [String]) -> Registers.Operation? {
        guard fields.count >= 5, let client = Int(fields[0]), let called = Int64(fields[1]) else { return nil }
        let returned = Int64(fields[2])
        if returned == nil && fields[2] != "?" { return nil }
        let key = fields[4]
        let input: Registers.Input
        var output: Registers.Output?
        switch (fields[3], fields.count) {
        case ("get", 7) where fields[5] == "value":
            (input, output) = (.get(key), .value(fields[6]))
        case ("get", 6):
            input = .get(key)
            output = fields[5] == "nil" ? .value(nil) : nil
        case ("put", 7):
            (input, output) = (.put(key, fields[5]), fields[6] == "ok" ? .ok : nil)
        case ("del", 6):
            (input, output) = (.delete(key), fields[5] == "ok" ? .ok : nil)
        case ("cas", 8):
            input = .compareAndSwap(key, expected: fields[5], new: fields[6])
            output = fields[7] == "?" ? nil : .swapped(fields[7] == "swapped")
        default:
            return nil
        }
        if let returned, let output {
            guard returned >= called else { return nil }
            return Registers.Operation(clientID: client, input: input, called: called, returned: returned, output: output)
        }
        return Registers.Operation(clientID: client, input: input, called: called, outcome: .unknown)
    }
}
