import KVProtocol

/// What one run (one concurrency level) measured.
struct BenchRunResult: Sendable {
    var clients: Int
    var recorder: BenchRecorder
    /// Seconds over which the measured requests were sent.
    var seconds: Double

    /// Successful requests (or lock cycles) per second.
    var throughput: Double { seconds > 0 ? Double(recorder.succeeded) / seconds : 0 }

    /// Successful requests completed in each whole second of the measurement (the stragglers
    /// answered after it ended are left out of the time line, not of the totals).
    var timeline: [Int] { Array(recorder.perSecond.prefix(Int(seconds.rounded(.up)))) }
}

/// Runs one level of a plan: opens the connections, starts the clock, runs every connection's
/// loop and merges what they measured.
struct BenchRunner {
    let plan: BenchPlan
    let target: KVEndpoint
    let chooser: KeyChooser
    /// Called about once a second with the counts so far (for the progress line).
    var progress: (@Sendable (BenchProgressSnapshot) -> Void)?

    /// Runs with `clients` connections; `level` is the sweep level's index.
    func run(clients: Int, level: Int) async throws(BenchError) -> BenchRunResult {
        let connections = try await openConnections(clients)
        let counters = BenchCounters()
        let start = BenchClock.now()
        let (schedule, measureFrom, measureUntil) = timing(start: start)
        let context = BenchRunContext(
            plan: plan, target: target, clients: clients, level: level, measureFrom: measureFrom,
            measureUntil: measureUntil, counters: counters, chooser: chooser)
        let reporter = progress.map { report in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if Task.isCancelled { return }
                    report(BenchProgressSnapshot(
                        clients: clients, elapsedNanos: BenchClock.now() - start, warmupNanos: measureFrom - start,
                        succeeded: counters.succeeded.load(ordering: .relaxed),
                        failed: counters.failed.load(ordering: .relaxed)))
                }
            }
        }
        let recorder = await withTaskGroup(of: BenchRecorder.self) { group in
            for (index, connection) in connections.enumerated() {
                group.addTask {
                    var worker = BenchWorker(context: context, index: index, connection: connection)
                    if let schedule { return await worker.runOpenLoop(schedule: schedule, workers: clients) }
                    guard case .closedLoop(let pipeline) = plan.pacing else { return await worker.runClosedLoop(pipeline: 1) }
                    return await worker.runClosedLoop(pipeline: pipeline)
                }
            }
            var merged = BenchRecorder(measureFrom: measureFrom)
            for await part in group { merged.merge(part) }
            return merged
        }
        reporter?.cancel()
        await reporter?.value
        let seconds: Double
        switch (plan.stop, schedule) {
        case (_, .some(let openLoop)): seconds = Double(openLoop.totalCount - openLoop.warmupCount) / openLoop.rate
        case (.duration(let planned), nil): seconds = planned
        case (.requests, nil):
            seconds = recorder.lastCompletion > measureFrom ? Double(recorder.lastCompletion - measureFrom) / 1e9 : 0
        }
        return BenchRunResult(clients: clients, recorder: recorder, seconds: seconds)
    }

    /// The open-loop schedule (if any), when measuring starts and (closed loop, `--duration`)
    /// when it stops.
    func timing(start: UInt64) -> (OpenLoopSchedule?, UInt64, UInt64?) {
        let measureFrom = start + UInt64(plan.warmupSeconds * 1e9)
        switch (plan.pacing, plan.stop) {
        case (.openLoop(let rate), _):
            let schedule = OpenLoopSchedule(rate: rate, start: start, warmupSeconds: plan.warmupSeconds, stop: plan.stop)
            return (schedule, schedule.measureFrom, nil)
        case (.closedLoop, .duration(let seconds)):
            return (nil, measureFrom, measureFrom + UInt64(seconds * 1e9))
        case (.closedLoop, .requests):
            return (nil, measureFrom, nil)
        }
    }

    /// Connects every client before the clock starts; the first failure ends the run.
    private func openConnections(_ count: Int) async throws(BenchError) -> [BenchConnection] {
        let plan = plan
        let target = target
        let outcomes = await withTaskGroup(of: (Int, Result<BenchConnection, BenchError>).self) { group in
            for index in 0..<count {
                group.addTask {
                    do {
                        return (index, .success(try await BenchConnection.connect(to: target, timeout: plan.connectTimeout, credentials: plan.credentials, tls: plan.tls)))
                    } catch {
                        return (index, .failure(error as? BenchError ?? .unreachable("\(error)")))
                    }
                }
            }
            var all: [(Int, Result<BenchConnection, BenchError>)] = []
            for await outcome in group { all.append(outcome) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var connections: [BenchConnection] = []
        var firstError: BenchError?
        for outcome in outcomes {
            switch outcome {
            case .success(let connection): connections.append(connection)
            case .failure(let error): firstError = firstError ?? error
            }
        }
        if let firstError {
            for connection in connections { connection.close() }
            throw firstError
        }
        return connections
    }
}
