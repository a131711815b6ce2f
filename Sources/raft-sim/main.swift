// raft-sim: runs the seeded Raft cluster simulator from the command line.
//
//   raft-sim --seeds N [--first-seed S] [--ticks T]   run N seeds, print seeds/second and totals
//   raft-sim --seed S [--trace] [--ticks T]           run one seed, optionally printing every event
//   raft-sim --throughput [--seconds X] [--batch B]   fault-free 3-node cluster, no I/O: proposals/s
//
// Arguments are parsed by hand so that the tool has no dependencies beyond the simulator.
import RaftCore
import RaftSimulation

#if canImport(Glibc)
    import Glibc
#endif

struct Options {
    var seeds = 100
    var firstSeed: UInt64 = 1
    var singleSeed: UInt64?
    var trace = false
    var throughput = false
    var ticks = 600
    var seconds = 3.0
    var batch = 64
}

func usage(_ problem: String) -> Never {
    print("raft-sim: \(problem)")
    print("usage: raft-sim --seeds N [--first-seed S] [--ticks T] | --seed S [--trace] [--ticks T] | --throughput [--seconds X] [--batch B]")
    exit(2)
}

func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var rest = arguments[...]
    func value(_ flag: String) -> String {
        guard let next = rest.popFirst() else { usage("\(flag) needs a value") }
        return next
    }
    func number<T: LosslessStringConvertible>(_ flag: String, _: T.Type) -> T {
        guard let parsed = T(value(flag)) else { usage("bad value for \(flag)") }
        return parsed
    }
    while let flag = rest.popFirst() {
        switch flag {
        case "--seeds": options.seeds = number(flag, Int.self)
        case "--first-seed": options.firstSeed = number(flag, UInt64.self)
        case "--seed": options.singleSeed = number(flag, UInt64.self)
        case "--ticks": options.ticks = number(flag, Int.self)
        case "--trace": options.trace = true
        case "--throughput": options.throughput = true
        case "--seconds": options.seconds = number(flag, Double.self)
        case "--batch": options.batch = number(flag, Int.self)
        case "--help", "-h": usage("help")
        default: usage("unknown argument \(flag)")
        }
    }
    return options
}

func seconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}

func format(_ value: Double, _ decimals: Int = 1) -> String {
    if decimals == 0 { return String(Int(value.rounded())) }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return String(rounded)
}

func runSeeds(_ options: Options) -> Int32 {
    let clock = ContinuousClock()
    let start = clock.now
    print("raft-sim: seeds \(options.firstSeed)..<\(options.firstSeed + UInt64(options.seeds)), \(options.ticks) safety ticks each")
    let result = SimulationRunner.run(first: options.firstSeed, count: options.seeds, safetyTicks: options.ticks)
    let elapsed = seconds(clock.now - start)
    print("seeds run: \(result.seedsRun) in \(format(elapsed, 2)) s = \(format(Double(result.seedsRun) / elapsed)) seeds/s")
    print("totals: \(result.stats.summary)")
    if let failure = result.failure {
        print(failure)
        return 1
    }
    print("all \(result.seedsRun) seeds passed")
    return 0
}

func runOne(_ seed: UInt64, _ options: Options) -> Int32 {
    var trace: (@Sendable (String) -> Void)?
    if options.trace { trace = { @Sendable line in print(line) } }
    do {
        let stats = try Simulation(seed: seed, safetyTicks: options.ticks, trace: trace).run()
        print("seed \(seed) passed: \(stats.summary)")
        return 0
    } catch {
        print(error)
        return 1
    }
}

func runThroughput(_ options: Options) -> Int32 {
    var cluster: ThroughputCluster
    do { cluster = try ThroughputCluster() } catch {
        print("raft-sim: \(error)")
        return 1
    }
    let clock = ContinuousClock()
    let start = clock.now
    var elapsed = 0.0
    while elapsed < options.seconds {
        guard cluster.proposeBatch(options.batch) else {
            print("raft-sim: node 1 lost leadership in a fault-free cluster")
            return 1
        }
        elapsed = seconds(clock.now - start)
    }
    let rate = Double(cluster.committedProposals) / elapsed
    print("throughput: 3-node cluster, no I/O, \(cluster.commandBytes)-byte commands, batches of \(options.batch)")
    print("committed \(cluster.committedProposals) proposals in \(format(elapsed, 2)) s = \(format(rate, 0)) proposals/s")
    return 0
}

let options = parse(Array(CommandLine.arguments.dropFirst()))
let status: Int32
if options.throughput {
    status = runThroughput(options)
} else if let seed = options.singleSeed {
    status = runOne(seed, options)
} else {
    status = runSeeds(options)
}
exit(status)
