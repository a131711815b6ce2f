/// One fault as it happened: when it was applied and healed, and how the cluster recovered.
struct FaultRecord: Sendable {
    var kind: FaultKind
    var detail: String
    /// Harness-clock nanoseconds.
    var applied: Int64
    var healed: Int64
    /// The end of this fault's window: the next fault's start, or the end of the phase.
    var windowEnd: Int64
    /// From the heal until every node named the same leader (INFO); nil if not within the limit.
    var leaderAfterHealNanos: Int64?
}

/// Runs the schedule against the cluster for `duration`, while the workloads run.
struct FaultPhase: Sendable {
    let context: FaultContext
    let clock: HarnessClock
    let seed: UInt64
    let duration: Duration

    func run() async throws(HarnessError) -> [FaultRecord] {
        var schedule = Schedule(seed: seed)
        var targets = Schedule.targetGenerator(seed: seed)
        var records: [FaultRecord] = []
        let end = ContinuousClock.now + duration
        let allNodes = Array(context.topology.nodes)
        while ContinuousClock.now < end {
            let planned = schedule.next()
            let applied = try await planned.kind.apply(context, &targets)
            let appliedAt = clock.now()
            if let previous = records.indices.last { records[previous].windowEnd = appliedAt }
            try? await Task.sleep(for: .milliseconds(planned.faultMillis))
            let healNote = try await applied.heal(context)
            let healedAt = clock.now()
            let healInstant = ContinuousClock.now
            let recovered = await context.probe.waitForAgreedLeader(among: allNodes, timeout: Limits.recoveryWaitMax)
            let leaderNanos = recovered.map { nanoseconds($0.waited) }
            records.append(FaultRecord(
                kind: planned.kind, detail: applied.detail, applied: appliedAt, healed: healedAt,
                windowEnd: clock.now(), leaderAfterHealNanos: leaderNanos))
            let recovery = recovered.map { "leader \($0.leader) known by every node \(milliseconds($0.waited)) ms after heal" }
                ?? "NO leader known by every node within \(Limits.recoveryWaitMax)"
            say("[\(seconds(appliedAt))] \(planned.kind.rawValue): \(applied.detail) for \(planned.faultMillis) ms; \(recovery)")
            if let healNote { say("[\(seconds(healedAt))] \(planned.kind.rawValue) healed: \(healNote)") }
            for crash in await context.cluster.reapUnexpectedExits() {
                say("[\(seconds(clock.now()))] node \(crash.node) EXITED on its own with status \(crash.status)")
            }
            let quietEnd = healInstant + .milliseconds(planned.quietMillis)
            if quietEnd > ContinuousClock.now { try? await Task.sleep(until: quietEnd) }
        }
        if let last = records.indices.last { records[last].windowEnd = clock.now() }
        return records
    }
}

func nanoseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
}

func milliseconds(_ duration: Duration) -> Int64 { nanoseconds(duration) / 1_000_000 }

/// `12.3s` for a harness-clock time.
func seconds(_ nanos: Int64) -> String {
    let tenths = nanos / 100_000_000
    return "\(tenths / 10).\(tenths % 10)s"
}
