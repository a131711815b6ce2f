import ArgumentParser
import KVProtocol

extension BenchWorkload: ExpressibleByArgument {}
extension BenchDistribution: ExpressibleByArgument {}

/// `kvctl bench`: a load tester that speaks RESP to kvd or to redis-server.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-test a kvd cluster (or any RESP server, e.g. redis-server) and report latency percentiles.",
        discussion: """
            WORKLOAD is put (SET), get (GET), mixed (GET with --read-ratio, else SET), cas (kvd's CAS \
            key expected new, expecting the value this client last saw; an unseen key is read first, \
            unmeasured) or lock (kvd lock cycles: LEASE GRANT, LOCK ... WAIT, UNLOCK, LEASE REVOKE; \
            cas and lock are refused against a server without them).

            Closed loop (default): --clients connections each send a request (or a batch of --pipeline) \
            when the last one was answered. Open loop (--rate R): requests fall due R times a second in \
            total, spread over the connections, and each latency counts from when its request was due, \
            so a stalled server is charged for the requests it held up (no coordinated omission).

            A list of client counts (--clients 1,2,4,8 or 1..256) runs one measurement per level and \
            fits the Universal Scalability Law X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)) to \
            the throughputs; --svg FILE plots throughput and latency against clients.

            Latency is of successful requests, from an HDR histogram (3 significant digits). Failures \
            are counted by kind: definite (NOTLEADER, ERR, ..., unreachable: had no effect) or \
            indeterminate (TIMEOUT, UNAVAILABLE, connection lost, no reply in time: may have had effect). \
            A follower's -NOTLEADER moves the connection to the leader it names.

            Examples:
              kvctl bench put --clients 16 --duration 10
              kvctl bench mixed --read-ratio 0.9 --distribution zipfian --keys 100000
              kvctl bench get --endpoints 127.0.0.1:6379 --rate 5000 --clients 32
              kvctl bench put --clients 1..128 --svg sweep.svg --json
            """
    )

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "put, get, mixed, cas or lock.") var workload: BenchWorkload

    @Option(help: "Concurrent connections: a count, or a list (1,2,4,8) or doubling range (1..256) for a sweep.")
    var clients = "16"
    @Option(help: "Closed loop: requests sent together on each connection.") var pipeline = 1
    @Option(help: "Open loop: total requests per second, latency from each request's due time.") var rate: Double?
    @Option(help: "Seconds to measure (default 10 when --requests is not given).") var duration: Double?
    @Option(help: "Requests (or lock cycles) to measure instead of a duration.") var requests: Int?
    @Option(help: "Seconds of load before measuring (each sweep level warms up).") var warmup = 1.0
    @Option(help: "Number of distinct keys (lock names for lock).") var keys = 10_000
    @Option(help: "Key popularity: uniform or zipfian.") var distribution: BenchDistribution = .uniform
    @Option(help: "Zipfian skew (YCSB uses 0.99).") var zipfTheta = 0.99
    @Option(help: "Seed of the key and value streams.") var seed: UInt64 = 1
    @Option(help: "Bytes per value written.") var valueBytes = 100
    @Option(help: "Prefix of every key and lock name.") var keyPrefix = "bench:"
    @Option(help: "mixed: fraction of requests that are GET.") var readRatio = 0.9
    @Option(help: "lock: lease time to live in seconds (at least the server's minimum).") var leaseTtl = 10
    @Option(help: "lock: seconds a LOCK may wait in the server's queue.") var lockWait = 2.0
    @Option(help: "Seconds to wait for a reply before counting it lost.") var timeout = 5.0
    @Option(help: "Seconds to wait for a TCP connection.") var connectTimeout = 2.0
    @Option(help: "Write an SVG plot of the sweep (throughput and latency against clients) to this file.")
    var svg: String?
    @Option(help: "A name for the server in the report and the SVG title (default: its address).")
    var label: String?
    @Flag(help: "Print the results as JSON instead of text.") var json = false

    var rawOptions: BenchRawOptions {
        BenchRawOptions(
            workload: workload, clients: clients, pipeline: pipeline, rate: rate, duration: duration,
            requests: requests, warmup: warmup, keys: keys, distribution: distribution, zipfTheta: zipfTheta,
            seed: seed, valueBytes: valueBytes, keyPrefix: keyPrefix, readRatio: readRatio, leaseTTL: leaseTtl,
            lockWait: lockWait, timeout: timeout, connectTimeout: connectTimeout)
    }

    func validate() throws {
        do {
            _ = try BenchPlan.validated(rawOptions, endpoints: [KVEndpoint(host: "127.0.0.1", port: 1)])
        } catch {
            throw ValidationError(error.description)
        }
        if svg != nil && BenchPlan.parseClientLevelsCount(clients) < 2 {
            throw ValidationError("--svg plots a sweep: give --clients a list such as 1,2,4,8")
        }
    }

    func run() async throws {
        var plan: BenchPlan
        do {
            plan = try BenchPlan.validated(rawOptions, endpoints: try cluster.resolveNodes().map(\.endpoint))
            plan.credentials = try cluster.credentials()
            plan.tls = try cluster.tlsContext()
        } catch let error as BenchError {
            throw CLIError(error.description, status: 64)
        }
        do {
            try await BenchSession(plan: plan, json: json, svgPath: svg, label: label).run()
        } catch {
            throw CLIError(error.description)
        }
    }
}

extension BenchPlan {
    /// How many levels `--clients` names (0 if it does not parse).
    static func parseClientLevelsCount(_ text: String) -> Int {
        (try? parseClientLevels(text))?.count ?? 0
    }
}

/// Runs a plan's levels one after another and prints the results.
struct BenchSession {
    let plan: BenchPlan
    let json: Bool
    let svgPath: String?
    let label: String?

    func run() async throws(BenchError) {
        let target = try await BenchTarget.discover(plan)
        try await BenchTarget.checkSupport(plan, at: target)
        let chooser = KeyChooser(keys: plan.keys, distribution: plan.distribution, theta: plan.zipfTheta)
        var totalSeconds: Double?
        if case .duration(let seconds) = plan.stop { totalSeconds = seconds }
        let runner = BenchRunner(
            plan: plan, target: target, chooser: chooser,
            progress: json ? nil : BenchProgress.reporter(totalSeconds: totalSeconds))
        let name = label ?? target.description
        if !json { Output.line(BenchReport.header(plan, target: name)) }
        var results: [BenchRunResult] = []
        for (level, clients) in plan.clientLevels.enumerated() {
            let result = try await runner.run(clients: clients, level: level)
            results.append(result)
            if !json {
                BenchProgress.clear()
                Output.line(BenchReport.single(result))
            }
        }
        let fit = plan.isSweep ? USLFit.fit(results.map { (Double($0.clients), $0.throughput) }) : nil
        if json {
            Output.line(BenchReport.json(plan, target: target, label: name, results: results, fit: fit).rendered())
        } else if plan.isSweep {
            Output.line("")
            Output.line(BenchReport.sweep(results, fit: fit))
        }
        if let svgPath {
            let title = "kvctl bench \(plan.workload.rawValue): \(name)"
            try BenchSVG.write(BenchSVG.render(results, fit: fit, title: title), to: svgPath)
            if !json { Output.line("wrote \(svgPath)") }
        }
    }
}
