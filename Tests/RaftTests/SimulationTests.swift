import Testing
import RaftSimulation

#if canImport(Glibc)
    import Glibc
#endif

/// Seeded simulation of whole clusters of production `RaftNode`s under network, disk and crash
/// faults (see `Simulation`): every Raft safety invariant is checked after every event, then a
/// healed cluster must commit again within 40 election timeouts. A failure prints its seed, the
/// violated invariant, the last events and the command that replays it.
@Suite("Simulation")
struct SimulationTests {
    /// How many seeds to run (`RAFT_SIM_SEEDS`, default 300: half 3-node, half 5-node clusters)
    /// and from which seed (`RAFT_SIM_FIRST_SEED`, default 1).
    static var seedRange: (first: UInt64, count: Int) {
        let count = environment("RAFT_SIM_SEEDS").flatMap { Int($0) } ?? 300
        let first = environment("RAFT_SIM_FIRST_SEED").flatMap { UInt64($0) } ?? 1
        return (first, count)
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// Seeds that once found a bug, and seeds that caught the bugs planted to prove the simulator
    /// has teeth; they must keep passing on the real code. The planted bugs were planted again
    /// when the simulator learned to crash a leader between its early AppendEntries and its own
    /// write and to run single-voter clusters (every seed's schedule changed then):
    /// - 23: the liveness probe ignored acknowledgements of its earlier writes (simulator bug).
    /// - 27: a stale leader appending at an index committed in a later term was wrongly flagged.
    /// - 1534: a healed cluster's backlog at one entry per round trip outran the liveness bound.
    /// - 17966: RaftCore bug: a stale-term rejection echoed its old term's ReadIndex round, so a
    ///   deposed leader confirmed a read no quorum acknowledged (Linearizable read). The seed no
    ///   longer reproduces it (nor does any of 10,000 seeds with the bug planted again); the
    ///   paper test `thesis6_4_staleTermRefusalConfirmsNoRound` pins it.
    /// - 35, 1: caught an unsynced vote / a vote never recorded (Durable vote); 2: the latter as a
    ///   double vote (One vote per term).
    /// - 138: caught commitment of a previous-term entry by counting replicas (Leader Completeness).
    /// - 3: caught ReadIndex served before the new leader's no-op committed (Linearizable read).
    /// - 8: caught AppendEntries accepted without the prevLogTerm check (Log Matching).
    /// - 9, 30: caught messages sent before persisting in a `Ready` that changes the term (a
    ///   single voter's first AppendEntries revealing a term it then lost: Durable term).
    /// - 2, 10: caught a leader counting learners' matchIndex toward the commit quorum (Leader
    ///   Completeness), planted when the KV simulation's operator replacing voters was added.
    /// - 63, 375: caught a leader starting a membership change before the previous one committed
    ///   (Leader Completeness), planted then too. A change proposed before the leader's no-op
    ///   committed (the thesis §4.1 erratum) was not caught by seeds 1-1000.
    static let regressionSeeds: [UInt64] = [23, 27, 1534, 17966, 35, 1, 2, 138, 3, 8, 9, 30, 10, 63, 375]

    @Test("every seed keeps Raft's safety invariants and recovers once healed")
    func seeds() async {
        let (first, count) = Self.seedRange
        var total = SimulationStats()
        var seedsRun = 0
        for seed in first..<(first &+ UInt64(count)) {
            do {
                total.add(try Simulation(seed: seed).run())
            } catch {
                Issue.record("\(error)")
                break
            }
            seedsRun += 1
            // Seeds are CPU-bound; yielding between them keeps this test from holding a thread of
            // the (2-thread) cooperative pool for minutes, which starved timing-sensitive tests
            // running in parallel.
            await Task.yield()
        }
        #expect(seedsRun == count)
        // A run that commits nothing proves nothing: the workload must really have happened.
        #expect(count == 0 || total.acknowledgedWrites > 0)
        print("simulated \(seedsRun) seeds from \(first): \(total.summary)")
    }

    @Test("seeds that once found bugs still pass", arguments: regressionSeeds)
    func regression(seed: UInt64) {
        do {
            let stats = try Simulation(seed: seed).run()
            #expect(stats.acknowledgedWrites > 0)
        } catch {
            Issue.record("\(error)")
        }
    }

    /// The simulator is deterministic: the same seed gives the same run (a failing seed replays).
    @Test("a seed replays identically")
    func deterministic() throws {
        let first = try Simulation(seed: 4242).run()
        let second = try Simulation(seed: 4242).run()
        #expect(first.messages == second.messages)
        #expect(first.acknowledgedWrites == second.acknowledgedWrites)
        #expect(first.committedIndex == second.committedIndex)
    }
}
