import KVProtocol

/// Text tables and JSON of bench results.
enum BenchReport {
    /// The percentiles reported for every run, as (label, percentile).
    static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    /// One line describing the plan, e.g. `put on 127.0.0.1:7003: closed loop, 10 s after 1 s warm-up, ...`.
    static func header(_ plan: BenchPlan, target: String) -> String {
        var parts: [String] = []
        switch plan.pacing {
        case .closedLoop(let pipeline): parts.append(pipeline > 1 ? "closed loop, pipeline \(pipeline)" : "closed loop")
        case .openLoop(let rate): parts.append("open loop at \(BenchFormat.decimal(rate, digits: 1)) req/s")
        }
        switch plan.stop {
        case .duration(let seconds): parts.append("\(BenchFormat.decimal(seconds, digits: 1)) s")
        case .requests(let count): parts.append("\(count) requests")
        }
        if plan.warmupSeconds > 0 { parts[parts.count - 1] += " after \(BenchFormat.decimal(plan.warmupSeconds, digits: 1)) s warm-up" }
        var keys = "\(plan.keys) keys \(plan.distribution.rawValue)"
        if plan.distribution == .zipfian { keys += " (theta \(BenchFormat.decimal(plan.zipfTheta, digits: 3)))" }
        parts.append(keys)
        switch plan.workload {
        case .put, .cas: parts.append("\(plan.valueBytes)-byte values")
        case .mixed: parts.append("\(BenchFormat.decimal(plan.readRatio * 100, digits: 1)) % reads, \(plan.valueBytes)-byte values")
        case .get: break
        case .lock: parts.append("lease TTL \(plan.leaseTTLSeconds) s")
        }
        parts.append("seed \(plan.seed)")
        let unit = plan.workload == .lock ? " (one lock cycle = 4 requests)" : ""
        return "kvctl bench \(plan.workload.rawValue) against \(target): " + parts.joined(separator: ", ") + unit
    }

    /// The text report of one run.
    static func single(_ result: BenchRunResult) -> String {
        let recorder = result.recorder
        var lines: [String] = []
        lines.append(
            "clients \(result.clients): \(recorder.succeeded) ok in \(BenchFormat.fixed(result.seconds, digits: 1)) s = "
                + "\(BenchFormat.fixed(result.throughput, digits: 1)) req/s; "
                + "failed \(recorder.definiteFailures) definite, \(recorder.indeterminateFailures) indeterminate")
        let latencies = percentiles.map { "\($0.0) \(ms(recorder.latencyMillis($0.1)))" } + ["max \(ms(recorder.maxLatencyMillis))"]
        lines.append("latency ms: " + latencies.joined(separator: "  "))
        lines.append("throughput per second: " + result.timeline.map(String.init).joined(separator: " "))
        for (kind, count) in recorder.failures.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(count) \(kind.name) (\(kind.indeterminate ? "indeterminate" : "definite"))")
        }
        if recorder.missed > 0 { lines.append("  \(recorder.missed) requests never sent: the run fell too far behind --rate") }
        if recorder.casMisses > 0 { lines.append("  \(recorder.casMisses) CAS answered :0 (another client changed the key)") }
        return lines.joined(separator: "\n")
    }

    /// The per-level table of a sweep and the fitted law.
    static func sweep(_ results: [BenchRunResult], fit: USLFit?) -> String {
        var rows = [["clients", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "failed", "USL req/s"]]
        for result in results {
            let recorder = result.recorder
            rows.append([
                String(result.clients), BenchFormat.fixed(result.throughput, digits: 1),
                ms(recorder.latencyMillis(50)), ms(recorder.latencyMillis(99)), ms(recorder.latencyMillis(99.9)),
                ms(recorder.maxLatencyMillis),
                String(recorder.definiteFailures + recorder.indeterminateFailures),
                fit.map { BenchFormat.fixed($0.throughput(Double(result.clients)), digits: 1) } ?? "-",
            ])
        }
        var text = table(rows)
        text += "\n" + fitLine(fit)
        return text
    }

    static func fitLine(_ fit: USLFit?) -> String {
        guard let fit else { return "USL fit: needs at least two levels with throughput" }
        let peak: String
        if let clients = fit.peakClients {
            peak = "N* = \(BenchFormat.fixed(clients, digits: 1)) clients (peak \(BenchFormat.fixed(fit.throughput(clients), digits: 1)) req/s)"
        } else {
            peak = "no peak (kappa ~ 0)"
        }
        return "USL fit: lambda = \(BenchFormat.fixed(fit.lambda, digits: 1)) req/s per client, "
            + "sigma = \(BenchFormat.decimal(fit.sigma, digits: 5)), kappa = \(BenchFormat.decimal(fit.kappa, digits: 7)), \(peak)"
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                // Right-aligned numbers, two spaces apart.
                String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func ms(_ value: Double) -> String {
        BenchFormat.fixed(value, digits: value < 10 ? 3 : 1)
    }

    // MARK: JSON

    static func json(_ plan: BenchPlan, target: KVEndpoint, label: String, results: [BenchRunResult], fit: USLFit?) -> BenchJSON {
        var members: [(String, BenchJSON)] = [
            ("workload", .string(plan.workload.rawValue)),
            ("target", .string(target.description)),
            ("label", .string(label)),
            ("plan", planJSON(plan)),
            ("runs", .array(results.map(runJSON))),
        ]
        if plan.isSweep { members.append(("usl", fitJSON(fit))) }
        return .object(members)
    }

    static func planJSON(_ plan: BenchPlan) -> BenchJSON {
        var members: [(String, BenchJSON)] = [("clients", .array(plan.clientLevels.map(BenchJSON.int)))]
        switch plan.pacing {
        case .closedLoop(let pipeline): members += [("pacing", .string("closed")), ("pipeline", .int(pipeline))]
        case .openLoop(let rate): members += [("pacing", .string("open")), ("rate", .number(rate))]
        }
        switch plan.stop {
        case .duration(let seconds): members.append(("duration_s", .number(seconds)))
        case .requests(let count): members.append(("requests", .int(count)))
        }
        members += [
            ("warmup_s", .number(plan.warmupSeconds)), ("keys", .int(plan.keys)),
            ("distribution", .string(plan.distribution.rawValue)), ("zipf_theta", .number(plan.zipfTheta)),
            ("seed", .string(String(plan.seed))), ("value_bytes", .int(plan.valueBytes)),
            ("key_prefix", .string(plan.keyPrefix)), ("read_ratio", .number(plan.readRatio)),
        ]
        return .object(members)
    }

    static func runJSON(_ result: BenchRunResult) -> BenchJSON {
        let recorder = result.recorder
        var latency: [(String, BenchJSON)] = percentiles.map { ($0.0, .number(recorder.latencyMillis($0.1))) }
        latency.append(("max", .number(recorder.maxLatencyMillis)))
        latency.append(("mean", .number(recorder.histogram.totalCount > 0 ? recorder.histogram.mean / 1000 : 0)))
        let failures: [BenchJSON] = recorder.failures.sorted(by: { $0.key < $1.key }).map { kind, count in
            .object([("kind", .string(kind.name)), ("indeterminate", .bool(kind.indeterminate)), ("count", .int(count))])
        }
        return .object([
            ("clients", .int(result.clients)),
            ("seconds", .number(result.seconds)),
            ("succeeded", .int(recorder.succeeded)),
            ("throughput", .number(result.throughput)),
            ("latency_ms", .object(latency)),
            ("throughput_per_second", .array(result.timeline.map(BenchJSON.int))),
            ("failed_definite", .int(recorder.definiteFailures)),
            ("failed_indeterminate", .int(recorder.indeterminateFailures)),
            ("failures", .array(failures)),
            ("missed", .int(recorder.missed)),
            ("cas_misses", .int(recorder.casMisses)),
        ])
    }

    static func fitJSON(_ fit: USLFit?) -> BenchJSON {
        guard let fit else { return .null }
        return .object([
            ("lambda", .number(fit.lambda)), ("sigma", .number(fit.sigma)), ("kappa", .number(fit.kappa)),
            ("peak_clients", fit.peakClients.map(BenchJSON.number) ?? .null),
        ])
    }
}
