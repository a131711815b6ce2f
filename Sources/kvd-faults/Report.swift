/// Availability figures of one fault kind over all its occurrences (reported, not asserted).
struct FaultKindFigures: Sendable, Codable {
    var kind: String
    var count: Int
    /// Longest stretch with no successful request from any client, within any window of this
    /// kind (from the fault's start to the next fault's start).
    var longestNoSuccessMillis: Int64
    /// When that stretch began (seconds into the run), to find it in the node logs.
    var longestNoSuccessStartSeconds: Double
    /// From each heal until every node named the same leader; nil entries did not recover in time.
    var healToLeaderMillis: [Int64?]
    /// From each heal to the first acknowledged write after it; nil if none.
    var healToFirstWriteMillis: [Int64?]
    var writesOK: Int
    var writesFailed: Int
    var writesIndeterminate: Int
}

/// One fault as it ran, for the JSON summary.
struct FaultEvent: Sendable, Codable {
    var kind: String
    var detail: String
    var appliedSeconds: Double
    var healedSeconds: Double
    var healToLeaderMillis: Int64?

    init(_ record: FaultRecord) {
        kind = record.kind.rawValue
        detail = record.detail
        appliedSeconds = Double(record.applied / 1_000_000) / 1000
        healedSeconds = Double(record.healed / 1_000_000) / 1000
        healToLeaderMillis = record.leaderAfterHealNanos.map { $0 / 1_000_000 }
    }
}

/// The whole run's summary, also written as JSON.
struct RunSummary: Sendable, Codable {
    var seed: UInt64
    var minutes: Double
    var nodes: Int
    var replay: String
    var faults: [FaultKindFigures]
    var events: [FaultEvent]
    var verdicts: [Verdict]
    var negativeControl: String
    var passed: Bool
}

enum Report {
    /// Figures per fault kind, in the order the kinds are declared.
    static func figures(_ records: [FaultRecord], _ state: Recorder.State) -> [FaultKindFigures] {
        let successes = state.successes.sorted()
        let writes = state.writes
        return FaultKind.allCases.compactMap { kind in
            let mine = records.filter { $0.kind == kind }
            guard !mine.isEmpty else { return nil }
            var figures = FaultKindFigures(
                kind: kind.rawValue, count: mine.count, longestNoSuccessMillis: 0, longestNoSuccessStartSeconds: 0,
                healToLeaderMillis: [],
                healToFirstWriteMillis: [], writesOK: 0, writesFailed: 0, writesIndeterminate: 0)
            for record in mine {
                let gap = longestGap(successes, from: record.applied, to: record.windowEnd)
                if gap.length / 1_000_000 > figures.longestNoSuccessMillis {
                    figures.longestNoSuccessMillis = gap.length / 1_000_000
                    figures.longestNoSuccessStartSeconds = Double(gap.start / 1_000_000) / 1000
                }
                figures.healToLeaderMillis.append(record.leaderAfterHealNanos.map { $0 / 1_000_000 })
                let firstWrite = writes.filter { $0.result == .ok && $0.returned >= record.healed }.map(\.returned).min()
                figures.healToFirstWriteMillis.append(firstWrite.map { ($0 - record.healed) / 1_000_000 })
                for write in writes where write.called >= record.applied && write.called < record.windowEnd {
                    switch write.result {
                    case .ok: figures.writesOK += 1
                    case .failed: figures.writesFailed += 1
                    case .indeterminate: figures.writesIndeterminate += 1
                    }
                }
            }
            return figures
        }
    }

    /// The longest interval in [from, to] containing no element of sorted `times`.
    static func longestGap(_ times: [Int64], from: Int64, to: Int64) -> (start: Int64, length: Int64) {
        var previous = from
        var longest: (start: Int64, length: Int64) = (from, 0)
        for time in times where time > from && time <= to {
            if time - previous > longest.length { longest = (previous, time - previous) }
            previous = time
        }
        if to - previous > longest.length { longest = (previous, to - previous) }
        return longest
    }

    /// The table printed at the end of a run.
    static func table(_ figures: [FaultKindFigures]) -> String {
        var lines = [
            pad("fault", 20) + pad("count", 7) + pad("max-gap-ms (at)", 20) + pad("heal->leader-ms", 22)
                + pad("heal->write-ms", 22) + "writes ok/failed/indet"
        ]
        for row in figures {
            lines.append(
                pad(row.kind, 20) + pad(String(row.count), 7) + pad("\(row.longestNoSuccessMillis) (\(row.longestNoSuccessStartSeconds)s)", 20)
                    + pad(spread(row.healToLeaderMillis), 22) + pad(spread(row.healToFirstWriteMillis), 22)
                    + "\(row.writesOK)/\(row.writesFailed)/\(row.writesIndeterminate)")
        }
        return lines.joined(separator: "\n")
    }

    /// `median/max` of the values, and how many never happened (e.g. `310/920 (1 none)`).
    static func spread(_ values: [Int64?]) -> String {
        let known = values.compactMap { $0 }.sorted()
        let missing = values.count - known.count
        guard !known.isEmpty else { return "none" }
        let text = "\(known[known.count / 2])/\(known.last!)"
        return missing > 0 ? "\(text) (\(missing) none)" : text
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

extension WriteResult: Equatable {}
