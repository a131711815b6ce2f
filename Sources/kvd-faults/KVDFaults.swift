import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `kvd-faults`: starts a kvd cluster in network namespaces, runs register, lock and session
/// workloads against it while a seeded schedule of network and process faults plays, then
/// checks what the clients saw (docs/FAULTS.md).
@main
struct KVDFaults: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd-faults",
        abstract: "Network and process fault harness for a real kvd cluster (needs root).",
        discussion: """
            Exit status: 0 every safety verdict passed (and the negative control found its \
            violation), 1 a verdict failed, 2 the run could not be set up, 77 skipped: not root \
            or no network namespaces.
            """)

    @Option(help: "Seed of the fault schedule and the clients' choices (default: from the clock; printed).")
    var seed: UInt64?

    @Option(help: "Length of the fault phase in minutes (default 2).")
    var minutes: Double?

    @Flag(help: "The CI run: a 2-minute fault phase and the negative control.")
    var short = false

    @Option(help: "Number of kvd nodes: 3 or 5.")
    var nodes = 5

    @Option(help: "Directory holding the kvd binary.")
    var binDir = ".build/release"

    @Option(help: "Where to write the JSON summary (default: summary.json in the work directory).")
    var summary: String?

    @Flag(help: "Run only the negative control (no workloads, no fault schedule).")
    var negativeControlOnly = false

    @Flag(help: "Skip the negative control.")
    var skipNegativeControl = false

    @Flag(help: "Remove namespaces and links left by crashed runs, then exit.")
    var cleanupOnly = false

    @Flag(help: "Keep the work directory (node logs, data) even when the run passes.")
    var keepWork = false

    @Option(help: "Check a register history file written by an earlier run, then exit (no cluster, no root).")
    var checkHistory: String?

    @Option(help: "Time budget per key for --check-history, in seconds.")
    var checkSeconds = 600

    func validate() throws {
        guard Limits.nodeCounts.contains(nodes) else {
            throw ValidationError("--nodes must be one of \(Limits.nodeCounts.sorted()), not \(nodes)")
        }
        if let minutes, !(minutes > 0 && minutes <= Limits.minutesMax) {
            throw ValidationError("--minutes must be above 0 and at most \(Int(Limits.minutesMax)), not \(minutes)")
        }
        if short && minutes != nil { throw ValidationError("--short fixes the length; leave out --minutes") }
        guard checkSeconds > 0 else { throw ValidationError("--check-seconds must be positive, not \(checkSeconds)") }
        if negativeControlOnly && skipNegativeControl {
            throw ValidationError("--negative-control-only and --skip-negative-control exclude each other")
        }
    }

    func run() async throws {
        if let checkHistory {
            let passed: Bool
            do {
                passed = try HistoryCheck.run(path: checkHistory, budget: .seconds(checkSeconds))
            } catch {
                say("kvd-faults: \(error)")
                throw ExitCode(2)
            }
            if !passed { throw ExitCode(1) }
            return
        }
        let signalSources = Cleanup.shared.installSignalHandlers()
        defer { signalSources.forEach { $0.cancel() } }
        if cleanupOnly {
            let removed = Topology.removeLeftovers()
            say("kvd-faults: removed \(removed.count) leftovers\(removed.isEmpty ? "" : ": " + removed.joined(separator: " "))")
            return
        }
        let seed = self.seed ?? UInt64(UInt32.random(in: 1...UInt32.max))
        let phaseMinutes = minutes ?? Limits.shortFaultPhaseSeconds / 60
        let settings = HarnessSettings(
            seed: seed, phaseMinutes: phaseMinutes, nodes: nodes, binDirectory: binDir, summaryPath: summary,
            runWorkloads: !negativeControlOnly, runNegativeControl: !skipNegativeControl, keepWork: keepWork,
            replay: replayCommand(seed: seed))
        say("kvd-faults: seed \(seed); replay with: \(settings.replay)")
        let passed: Bool
        do {
            passed = try await Harness(settings: settings).run()
        } catch {
            Cleanup.shared.tearDown()
            if error.isEnvironmentMissing {
                say("kvd-faults: skipped: needs root and network namespaces (\(error))")
                throw ExitCode(77)
            }
            say("kvd-faults: FAIL: \(error)")
            say("kvd-faults: seed \(seed); replay with: \(settings.replay)")
            throw ExitCode(2)
        }
        Cleanup.shared.tearDown()
        if !passed { throw ExitCode(1) }
    }

    private func replayCommand(seed: UInt64) -> String {
        var words = ["scripts/faults.sh"]
        if short { words.append("--short") }
        words += ["--seed", String(seed)]
        if let minutes { words += ["--minutes", minutes == minutes.rounded() ? String(Int(minutes)) : String(minutes)] }
        words += ["--nodes", String(nodes)]
        if negativeControlOnly { words.append("--negative-control-only") }
        if skipNegativeControl { words.append("--skip-negative-control") }
        return words.joined(separator: " ")
    }
}
