import KVProtocol

/// The settings of one run, from the command line.
struct HarnessSettings: Sendable {
    var seed: UInt64
    var phaseMinutes: Double
    var nodes: Int
    var binDirectory: String
    var summaryPath: String?
    var runWorkloads: Bool
    var runNegativeControl: Bool
    var keepWork: Bool
    var replay: String
}

/// One run: topology, cluster, workloads under the fault schedule, final reads, negative
/// control, verdicts and the report. Returns whether every asserted verdict passed.
struct Harness: Sendable {
    let settings: HarnessSettings

    func run() async throws(HarnessError) -> Bool {
        try Topology.probeNamespaces()
        let leftovers = Topology.removeLeftovers()
        if !leftovers.isEmpty { say("kvd-faults: removed leftovers of earlier runs: \(leftovers.joined(separator: " "))") }
        let firewall = try Firewall.detect()
        let kvdPath = try absoluteBinary("kvd")
        let topology = try Topology.make(nodeCount: settings.nodes)
        let work = try makeWorkDirectory(topology.runID)
        say("kvd-faults: run \(topology.runID), \(settings.nodes) nodes on 10.231.\(topology.subnetOctet).0/24, "
            + "firewall \(firewall.name), work directory \(work)")
        try topology.create(firewall: firewall)

        let clock = HarnessClock()
        let cluster = Cluster(topology: topology, kvdPath: kvdPath, workDirectory: work)
        try await cluster.writeConfiguration()
        try await cluster.startAll()
        let probe = ClusterProbe(cluster: cluster)
        let context = FaultContext(cluster: cluster, probe: probe, firewall: firewall)
        let allNodes = Array(topology.nodes)
        guard let first = await probe.waitForAgreedLeader(among: allNodes, timeout: Limits.leaderWaitMax) else {
            throw HarnessError.noLeader(waited: Limits.leaderWaitMax, detail: await logTails(cluster))
        }
        say("[\(seconds(clock.now()))] leader \(first.leader) known by every node after \(milliseconds(first.waited)) ms")

        let recorder = Recorder(clock: clock)
        var records: [FaultRecord] = []
        var finals = FinalReads()
        if settings.runWorkloads {
            let stop = StopFlag()
            let workloadContext = WorkloadContext(endpoints: cluster.endpoints, recorder: recorder, stop: stop, seed: settings.seed)
            let workloads = Task {
                async let registers: Void = RegisterWorkload(context: workloadContext).run()
                async let locks: Void = LockWorkload(context: workloadContext).run()
                async let sessions: Void = SessionWorkload(context: workloadContext).run()
                async let steady: Void = SteadyHolderWorkload(context: workloadContext).run()
                _ = await (registers, locks, sessions, steady)
            }
            let phase = FaultPhase(
                context: context, clock: clock, seed: settings.seed, duration: .seconds(settings.phaseMinutes * 60))
            do {
                records = try await phase.run()
            } catch {
                stop.set()
                await workloads.value
                throw error
            }
            stop.set()
            say("[\(seconds(clock.now()))] fault phase over after \(records.count) faults; waiting for the clients")
            await workloads.value
            guard await probe.waitForAgreedLeader(among: allNodes, timeout: Limits.leaderWaitMax) != nil else {
                throw HarnessError.noLeader(waited: Limits.leaderWaitMax, detail: "after the fault phase" + (await logTails(cluster)))
            }
            finals = await finalReads(cluster, recorder)
        }

        var negative: NegativeControl.Outcome?
        if settings.runNegativeControl {
            say("[\(seconds(clock.now()))] negative control: isolating the leader and reading from it with READONLY")
            negative = await NegativeControl(context: context, clock: clock).run()
        }
        _ = await cluster.reapUnexpectedExits()
        let crashes = await cluster.crashes
        await cluster.stopAll()
        return try conclude(
            recorder: recorder, records: records, finals: finals, negative: negative, crashes: crashes, work: work)
    }

    /// Verdicts, the printed report and the JSON summary; whether the run passed.
    private func conclude(
        recorder: Recorder, records: [FaultRecord], finals: FinalReads, negative: NegativeControl.Outcome?,
        crashes: [(node: Int, status: Int32)], work: String
    ) throws(HarnessError) -> Bool {
        var verdicts = settings.runWorkloads ? Verdicts.all(recorder.snapshot, finals: finals) : []
        let crashDetail = crashes.map { "node \($0.node) exited with status \($0.status)" }.joined(separator: "; ")
        verdicts.append(Verdict(name: "no kvd exited on its own", passed: crashes.isEmpty, detail: crashDetail.isEmpty ? "none" : crashDetail))
        var negativeLine = "negative control: not run"
        if let negative {
            negativeLine = negative.detected
                ? "negative control: violation detected (expected) after \(negative.attempts) attempt(s): \(negative.detail)"
                : "negative control: NO violation detected in \(negative.attempts) attempts: \(negative.detail)"
            verdicts.append(Verdict(name: "negative control detected", passed: negative.detected, detail: negative.detail))
        }
        let passed = verdicts.allSatisfy(\.passed)
        let historyPath = "\(work)/registers-history.tsv"
        try HistoryFile.write(recorder.snapshot.registers.operations, to: historyPath)
        let figures = Report.figures(records, recorder.snapshot)
        say("")
        say("availability per fault kind (reported, not asserted):")
        say(Report.table(figures))
        say("")
        say("safety verdicts:")
        for verdict in verdicts { say("  \(verdict.passed ? "PASS" : "FAIL")  \(verdict.name): \(verdict.detail)") }
        say(negativeLine)
        if !passed { say("register history: \(historyPath) (check again with kvd-faults --check-history FILE)") }
        let summary = RunSummary(
            seed: settings.seed, minutes: settings.phaseMinutes, nodes: settings.nodes, replay: settings.replay,
            faults: figures, events: records.map(FaultEvent.init), verdicts: verdicts, negativeControl: negativeLine, passed: passed)
        let summaryPath = settings.summaryPath ?? "\(work)/summary.json"
        try writeSummary(summary, to: summaryPath)
        say("summary: \(summaryPath)")
        say("kvd-faults: \(passed ? "PASS" : "FAIL") (seed \(settings.seed); replay with: \(settings.replay))")
        if passed && !settings.keepWork && settings.summaryPath != nil {
            _ = try? Shell.run(["rm", "-rf", work])
        } else {
            say("node logs and data: \(work)")
        }
        return passed
    }
}
